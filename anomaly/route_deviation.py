"""route_deviation (major): the crate is outside its trip's corridor.

Cross-track distance from each accepted fix to the planned polyline, against max(corridor_m, k * acc).
Entering needs `deviation_entry_count` consecutive outside fixes, or two spanning `deviation_entry_s`;
rejected fixes (jumps, poor accuracy) never count, so one bad fix cannot trigger it. When two consecutive
outside fixes are far apart, the straight line between them is sampled: if it passes through the corridor,
the crate crossed the route between them and the count starts again. Leaving needs
`deviation_exit_count` fixes within `deviation_exit_ratio` of the corridor (hysteresis); then it resolves.
"""

from __future__ import annotations

import math

from alerts.model import AlertType
from anomaly.base import Ctx, Detector
from anomaly.gps import FIX_OK
from anomaly.phase import Phase, TripPlan
from anomaly.state import TrackerState


class RouteDeviationDetector(Detector):
    type = AlertType.ROUTE_DEVIATION
    phases = frozenset({Phase.TRANSIT})

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        if c.fix != FIX_OK:
            return
        plan = c.plan
        assert plan is not None
        cfg = c.cfg
        thr = plan.corridor_m
        if cfg.corridor_acc_factor * c.acc > thr:
            thr = cfg.corridor_acc_factor * c.acc
        ts = c.ts
        if st.active & self.bit:
            if self._distance_within(c, st, plan, thr * cfg.deviation_exit_ratio):
                st.dv_in += 1
                if st.dv_in >= cfg.deviation_exit_count and c.emit.resolve(st, plan, self.type, ts, "back_in_corridor"):
                    st.dv_n = 0
                    st.dv_in = 0
            else:
                st.dv_in = 0
            return
        if self._distance_within(c, st, plan, thr):
            st.dv_n = 0
            return
        d = st.dv_d
        if st.dv_n > 0 and self._crossed(c, plan, thr):
            st.dv_n = 0
        if st.dv_n == 0:
            st.dv_ts = ts
            st.dv_lat = c.lat
            st.dv_lon = c.lon
        st.dv_n += 1
        if st.dv_n >= cfg.deviation_entry_count or (st.dv_n >= 2 and ts - st.dv_ts >= cfg.deviation_entry_s):
            details = {
                "distance_m": round(d, 1),
                "corridor_m": round(thr, 1),
                "fixes_outside": st.dv_n,
                "since": st.dv_ts,
            }
            if c.emit.raise_(st, plan, self.type, st.dv_ts, st.dv_lat, st.dv_lon, details):
                st.dv_in = 0

    @staticmethod
    def _distance_within(c: Ctx, st: TrackerState, plan: TripPlan, thr: float) -> bool:
        """Is the fix within thr of the route? Sets st.dv_d to the nearest distance when it is not."""
        route = plan.route
        mode = c.cfg.route_search
        if mode == "hint":
            i = route.within(c.x, c.y, thr, st.hint, c.cfg.hint_window)
            if i >= 0:
                st.hint = i
                return True
            d, i = route.nearest_np(c.x, c.y)
        elif mode == "numpy":
            d, i = route.nearest_np(c.x, c.y)
        else:
            d, i = route.nearest_py(c.x, c.y)
        st.hint = i
        st.dv_d = d
        return d <= thr

    @staticmethod
    def _crossed(c: Ctx, plan: TripPlan, thr: float) -> bool:
        if c.prev_lat != c.prev_lat:
            return False
        x0, y0 = plan.frame.to_xy(c.prev_lat, c.prev_lon)
        if math.hypot(c.x - x0, c.y - y0) <= thr:
            return False  # too close together to have crossed the corridor in between
        return plan.route.crosses(x0, y0, c.x, c.y, thr, min(c.cfg.crossing_sample_m, thr * 0.5))
