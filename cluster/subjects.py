"""The stream's layout: which partition a tracker's messages go to, and what a message carries.

The partition is a stable hash of the tracker id, computed by the publisher (the bridge). nats-server's
own `{{partition(n, ...)}}` subject mapping would need the tracker id as one subject token, but tracker
ids may contain dots (OwnTracks' `user.device`), and a mapping lives in the server's configuration,
which a worker pointed at an existing server cannot set. Every worker and bridge must use the same
partition count (KAWAL_CLUSTER_PARTITIONS); the workers check it against the database at start.
"""

from __future__ import annotations

import hashlib
import zlib

HEADER_TOPIC = "Kawal-Topic"
HEADER_RECEIVED = "Kawal-Received"
HEADER_MSG_ID = "Nats-Msg-Id"  # JetStream drops a second copy with the same id inside its duplicate window


def tracker_of_topic(topic: str) -> str | None:
    """The tracker id a tracker topic names (CONTRACT 1), or None for any other topic."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "kawal" and parts[1] == "v1":
        return parts[2]
    if len(parts) == 3 and parts[0] == "owntracks":
        return f"{parts[1]}.{parts[2]}"
    return None


def partition_of(tracker_id: str | None, partitions: int) -> int:
    """A stable partition for a tracker: CRC-32 of its id (the same in every process and release)."""
    if tracker_id is None:
        return 0  # unknown topics: one place, where the decoder rejects them
    return zlib.crc32(tracker_id.encode("utf-8", "surrogatepass")) % partitions


def subject_prefix(stream: str) -> str:
    """Subjects are named after the stream, so clusters that share one NATS server stay apart."""
    return f"kawal.{stream.lower()}"


def subject(stream: str, part: int) -> str:
    return f"{subject_prefix(stream)}.{part}"


def stream_subjects(stream: str) -> list[str]:
    return [f"{subject_prefix(stream)}.*"]


def message_id(topic: str, payload: bytes) -> str | None:
    """The same MQTT message bridged by several workers (or redelivered) gets the same id.

    A tracker's two telemetry messages with equal topic and payload carry the same readings (same ts and
    seq), which the readings table would store once anyway. Status messages (`online`, `offline`) repeat
    legitimately, so they get none: every copy is kept, and setting a status twice changes nothing.
    """
    if topic.endswith("/status"):
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(topic.encode("utf-8", "surrogatepass"))
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()
