"""The validated reading: what every wire format decodes into and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SealState = Literal["closed", "open", "tampered"]


@dataclass(slots=True)
class Reading:
    tracker_id: str
    ts: float  # Unix seconds, tracker clock
    lat: float | None = None
    lon: float | None = None
    seq: int | None = None
    acc: float | None = None  # metres, 68 % radius
    spd: float | None = None  # km/h
    hdg: float | None = None  # degrees
    bat: float | None = None  # percent
    seal: SealState | None = None
    extra: dict[str, Any] | None = field(default=None)

    @property
    def has_position(self) -> bool:
        """A usable fix: present, and not Null Island (0, 0)."""
        return self.lat is not None and self.lon is not None and not (self.lat == 0.0 and self.lon == 0.0)

    @property
    def dedup_key(self) -> tuple[str, float, int]:
        """Same tracker, same time, same counter: the same reading sent twice."""
        return (self.tracker_id, self.ts, -1 if self.seq is None else self.seq)
