"""overdue (minor): the destination has not been reached by arrive_by. The alert's ts is arrive_by.

Raised in transit once the event time passes arrive_by; resolves on arrival (ts = arrival time). A crate
already inside its destination zone since before arrive_by, waiting out its 2-minute rest, is not overdue.
"""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.base import INF, Ctx, Detector
from anomaly.phase import Phase
from anomaly.state import TrackerState


class OverdueDetector(Detector):
    type = AlertType.OVERDUE
    phases = frozenset({Phase.TRANSIT, Phase.ARRIVED})

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        self.on_time(c, st)

    def on_time(self, c: Ctx, st: TrackerState) -> None:
        plan = c.plan
        assert plan is not None
        if c.phase == Phase.ARRIVED:
            if st.active & self.bit:
                c.emit.resolve(st, plan, self.type, st.arrived, "arrived", {"arrived": st.arrived})
            return
        if st.active & self.bit or c.ts <= plan.arrive_by:
            return
        if st.dest_since <= plan.arrive_by:  # inside the zone in time, rest not yet confirmed (NaN: False)
            return
        lat, lon = (st.fx_lat, st.fx_lon) if st.has_fix else (None, None)
        c.emit.raise_(
            st, plan, self.type, plan.arrive_by, lat, lon, {"arrive_by": plan.arrive_by, "destination": plan.dest.name}
        )

    def deadline(self, c: Ctx, st: TrackerState) -> float:
        plan = c.plan
        if plan is None or st.active & self.bit or c.phase == Phase.ARRIVED:
            return INF
        if st.dest_since <= plan.arrive_by:
            return INF  # only a reading can confirm the arrival or show the crate left
        return plan.arrive_by + 0.001
