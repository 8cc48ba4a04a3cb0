"""Channel adapters: each turns a platform's payloads into Inbound messages and renders Replies. Thin."""
