"""Clocks for time-driven checks: wall time in production, event time for replay (KAWAL_CLOCK)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def observe(self, ts: float) -> None:
        """Tell the clock a reading with this event time was seen."""


class WallClock:
    def now(self) -> float:
        return time.time()

    def observe(self, ts: float) -> None:
        return None


class EventClock:
    """The latest reading time seen across all trackers; never goes backwards."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def observe(self, ts: float) -> None:
        if ts > self._now:
            with self._lock:
                if ts > self._now:
                    self._now = ts


def make_clock(kind: str) -> Clock:
    return EventClock() if kind == "event" else WallClock()
