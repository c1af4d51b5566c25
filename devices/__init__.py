"""Trackers: the wire formats they speak (CONTRACT section 1) and the registry of known trackers."""
