"""Getting messages out: the outbox worker, rate limits, photos and uploads."""
