"""The conversation engine: one inbound message through identity, stored state and a flow step, in one transaction."""
