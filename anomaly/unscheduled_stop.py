"""unscheduled_stop (major): stationary for more than max_stop_min outside the origin, the destination
and the allowed stops, raised while the crate is still stopped; ts is when the stop began.

Stationarity comes from anomaly.motion (a noise-aware cluster of fixes, 200 m across). The stop's length is
what its fixes show, never extrapolated over a silence, so it is raised by the fix that takes it past
max_stop_min, not by the clock: a tracker that falls silent while stopped may be driving away. A stop inside
another trip's origin or destination zone is wrong_destination instead, not both. Resolves when the crate
moves on (two fixes outside the cluster) or arrives.
"""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.base import Ctx, Detector
from anomaly.motion import STOP_UNSCHEDULED, classify, long_stop, stop_duration, stop_start
from anomaly.phase import Phase
from anomaly.state import TrackerState


class StopDetector(Detector):
    """Shared rule of the two stop alerts; `wanted` is the stop class this one raises for."""

    phases = frozenset({Phase.TRANSIT})
    wanted = STOP_UNSCHEDULED

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        if st.active & self.bit:
            if c.moved:
                c.emit.resolve(st, c.plan, self.type, c.ts, "moved_on")
            return
        if long_stop(c, st) and classify(c, st) == self.wanted:
            self.raise_stop(c, st)

    def details(self, c: Ctx, st: TrackerState) -> dict[str, object]:
        plan = c.plan
        assert plan is not None
        return {"stopped_min": round(stop_duration(c, st) / 60.0, 1), "max_stop_min": plan.max_stop_s / 60.0}

    def raise_stop(self, c: Ctx, st: TrackerState) -> None:
        c.emit.raise_(st, c.plan, self.type, stop_start(c, st), st.sc_lat, st.sc_lon, self.details(c, st))


class UnscheduledStopDetector(StopDetector):
    type = AlertType.UNSCHEDULED_STOP
    wanted = STOP_UNSCHEDULED
