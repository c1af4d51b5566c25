"""Cluster mode (CONTRACT 3.1): several workers, one PostgreSQL, and NATS JetStream between them.

MQTT (trackers) -> bridge.py -> JetStream stream, one subject per partition (subjects.py) -> the worker
that holds the partition's lease (leases.py) -> the ingest pipeline with one detection engine per
partition (partition.py). See docs/scaling.md.
"""
