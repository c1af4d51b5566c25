"""A message read from the engine's stream, as the ingest pipeline takes it."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.mqtt import InboundMessage

HEADER_CLOCK = "Kawal-Clock"


@dataclass(slots=True)
class StreamMessage(InboundMessage):
    """`mid` is the stream sequence; `token` names the lease under which it was read (a message read under
    an earlier lease of the same partition is left to the replay). `clock` marks an event-clock message:
    every tracker message bridged before it had an event time of at most `clock` (KAWAL_CLOCK=event)."""

    partition: int = -1
    token: int = 0
    clock: float | None = None


def wake_message(now: float) -> StreamMessage:
    """Carries nothing; wakes the pipeline so it applies ownership changes without waiting for a tick."""
    return StreamMessage("", b"", 0, 0, now)
