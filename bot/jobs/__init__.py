"""Scheduled work: SLA sweeps, notices, fee reminders, digests."""
