"""The HTTP API (CONTRACT section 2) and the ops dashboard."""
