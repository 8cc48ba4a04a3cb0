"""Running propdesk: metrics for operators, readiness, start-up shared safely by several workers."""
