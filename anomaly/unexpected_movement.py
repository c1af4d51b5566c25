"""unexpected_movement (major): the crate leaves the zone where it is stored while no trip allows it:
the origin before depart_after, or the destination after arrival.

Leaving means accepted fixes farther than radius + max(storage_margin_m, k * acc) from the zone's centre
(indoor fixes drift; fixes worse than max_acc_m are not used at all), confirmed by
`movement_confirm_count` consecutive fixes or two spanning `movement_confirm_s`. ts is the first fix
outside. Resolves after `movement_exit_count` fixes back inside, or when the trip departs (the movement
is then allowed) or the tracker is bound to another trip.
"""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.base import Ctx, Detector
from anomaly.gps import FIX_OK
from anomaly.phase import STORAGE, Phase
from anomaly.state import TrackerState


class UnexpectedMovementDetector(Detector):
    type = AlertType.UNEXPECTED_MOVEMENT
    phases = STORAGE

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        if c.fix != FIX_OK:
            return
        plan = c.plan
        assert plan is not None
        cfg = c.cfg
        zone = plan.origin if c.phase == Phase.BEFORE else plan.dest
        margin = cfg.storage_margin_m
        if cfg.storage_acc_factor * c.acc > margin:
            margin = cfg.storage_acc_factor * c.acc
        d = zone.dist(c.x, c.y)
        outside = d > zone.r + margin
        ts = c.ts
        if st.active & self.bit:
            if outside:
                st.mv_in = 0
            else:
                st.mv_in += 1
                if st.mv_in >= cfg.movement_exit_count and c.emit.resolve(st, plan, self.type, ts, "back_in_zone"):
                    st.mv_n = 0
                    st.mv_in = 0
            return
        if not outside:
            st.mv_n = 0
            return
        if st.mv_n == 0:
            st.mv_ts = ts
            st.mv_lat = c.lat
            st.mv_lon = c.lon
        st.mv_n += 1
        st.mv_d = d
        confirmed = st.mv_n >= cfg.movement_confirm_count or (st.mv_n >= 2 and ts - st.mv_ts >= cfg.movement_confirm_s)
        if confirmed:
            details = {
                "zone": zone.name,
                "kind": "origin" if c.phase == Phase.BEFORE else "destination",
                "distance_m": round(d - zone.r, 1),
                "fixes_outside": st.mv_n,
            }
            if c.emit.raise_(st, plan, self.type, st.mv_ts, st.mv_lat, st.mv_lon, details):
                st.mv_in = 0
