"""The detector interface, after Traccar's handler/events/*EventHandler.java.

Traccar hands each event handler one position and the device's state, and gets back the events to raise.
Here a detector gets the evaluation context (the reading or the tick time, the accepted fix, the trip
plan and phase) and the tracker's state, and emits through the context's emitter. Detectors are small
and stateless themselves: everything they remember is in `TrackerState`, so the engine can snapshot it.

Each detector says which phases it applies in. An alert a detector raised resolves by itself when its
phase ends (arrival resolves overdue; departure resolves unexpected_movement), unless the type never
auto-resolves, and trip-scoped alerts resolve when the tracker is bound to another trip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

from alerts.model import NEVER_AUTO_RESOLVE, AlertAction, AlertEvent, AlertType
from anomaly.config import DetectionConfig
from anomaly.gps import FIX_NONE
from anomaly.phase import ANY_PHASE, Phase, TripPlan
from anomaly.state import TrackerState
from anomaly.zones import ZoneIndex
from devices.reading import Reading

log = logging.getLogger(__name__)

INF = math.inf
BIT: dict[AlertType, int] = {t: 1 << i for i, t in enumerate(AlertType)}


class Emitter:
    """Builds AlertEvents and hands them to the sink; keeps each tracker's `active` bits in step.

    A bit is set only when the sink took the event, so a failed write is retried at the next evaluation
    (detectors are level-triggered: "condition holds and not active" raises).
    """

    def __init__(self, sink: Callable[[AlertEvent], object], stats: dict[str, int]) -> None:
        self._sink = sink
        self._stats = stats

    def count(self, key: str) -> None:
        self._stats[key] = self._stats.get(key, 0) + 1

    def _send(self, ev: AlertEvent) -> bool:
        try:
            self._sink(ev)
        except Exception:
            self._stats["sink_errors"] = self._stats.get("sink_errors", 0) + 1
            log.exception("alert sink failed for %s %s of %s", ev.action, ev.type, ev.tracker_id)
            return False
        key = f"{ev.action}:{ev.type}"
        self._stats[key] = self._stats.get(key, 0) + 1
        return True

    def raise_(
        self,
        st: TrackerState,
        plan: TripPlan | None,
        atype: AlertType,
        ts: float,
        lat: float | None,
        lon: float | None,
        details: dict[str, Any],
    ) -> bool:
        if lat is not None and (lat != lat or lon is None or lon != lon):
            lat = lon = None
        ev = AlertEvent(
            action=AlertAction.RAISE,
            type=atype,
            tracker_id=st.tid,
            trip_id=None if plan is None else plan.trip_id,
            crate_id=None if plan is None else plan.crate_id,
            ts=ts,
            lat=lat,
            lon=lon,
            details=details,
        )
        if self._send(ev):
            st.active |= BIT[atype]
            return True
        return False

    def resolve(
        self,
        st: TrackerState,
        plan: TripPlan | None,
        atype: AlertType,
        ts: float,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> bool:
        bit = BIT[atype]
        if atype in NEVER_AUTO_RESOLVE:
            st.active &= ~bit
            return True
        ev = AlertEvent(
            action=AlertAction.RESOLVE,
            type=atype,
            tracker_id=st.tid,
            trip_id=None if plan is None else plan.trip_id,
            crate_id=None if plan is None else plan.crate_id,
            ts=ts,
            details={"reason": reason, **(details or {})},
        )
        if self._send(ev):
            st.active &= ~bit
            return True
        return False


class Ctx:
    """What one evaluation sees. The engine reuses one instance; detectors must not keep it."""

    __slots__ = (
        "acc",
        "cfg",
        "emit",
        "fix",
        "lat",
        "lon",
        "moved",
        "phase",
        "plan",
        "prev_last",
        "prev_lat",
        "prev_lon",
        "prev_seq",
        "prev_ts",
        "reading",
        "ts",
        "x",
        "y",
        "zones",
    )

    def __init__(self, cfg: DetectionConfig, emit: Emitter, zones: ZoneIndex) -> None:
        self.cfg = cfg
        self.emit = emit
        self.zones = zones
        self.plan: TripPlan | None = None
        self.phase = Phase.NONE
        self.ts = 0.0  # event time of the reading, or the tick's time
        self.reading: Reading | None = None  # None on a tick
        self.fix = FIX_NONE  # gps.FIX_* of the reading
        self.lat = 0.0  # the reading's position when fix == FIX_OK (or FIX_JUMP)
        self.lon = 0.0
        self.acc = 0.0
        self.x = 0.0  # the same in the plan's metre frame (FIX_OK with a plan)
        self.y = 0.0
        self.prev_lat = math.nan  # the previously accepted fix
        self.prev_lon = math.nan
        self.prev_ts = math.nan
        self.prev_last = -INF  # the tracker's previous in-order reading time (before this one)
        self.prev_seq = -2  # and its seq (-1: none)
        self.moved = False  # this fix ended the stop the crate was in


class Detector:
    """One alert type. Subclasses set `type` and `phases` and override what they need."""

    type: ClassVar[AlertType]
    phases: ClassVar[frozenset[Phase]] = ANY_PHASE
    trip_scoped: ClassVar[bool] = True  # resolve when the tracker changes trip
    bit: int

    def __init__(self) -> None:
        self.bit = BIT[self.type]

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        """An in-order reading of this tracker, in one of `phases`."""

    def on_time(self, c: Ctx, st: TrackerState) -> None:
        """The clock reached `c.ts` with no new reading (called only in `phases`)."""

    def deadline(self, c: Ctx, st: TrackerState) -> float:
        """The event time at which `on_time` could next change something; INF when nothing is pending."""
        return INF

    def active(self, st: TrackerState) -> bool:
        return bool(st.active & self.bit)
