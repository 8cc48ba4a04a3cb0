"""Triage of owners' messages: kind, category and urgency, with reasons."""
