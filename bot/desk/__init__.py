"""The desk services: tickets, routing, SLA, staff actions and views, bindings, staff accounts.

Every surface changes and reads the desk through these."""
