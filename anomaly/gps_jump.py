"""gps_jump (warning): a fix implies an impossible speed from the last accepted fix.

The screening itself is in anomaly.gps (Traccar's filter.maxSpeed); the rejected fix never reaches the
movement detectors. One alert per episode: further jumps while it is open do not write again. It
resolves once `gps_jump_quiet_s` has passed since the last jump, at the next good fix or on a tick.
"""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.base import INF, Ctx, Detector
from anomaly.gps import FIX_JUMP, FIX_OK
from anomaly.state import TrackerState


class GpsJumpDetector(Detector):
    type = AlertType.GPS_JUMP
    trip_scoped = False

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        if c.fix == FIX_JUMP:
            if not st.active & self.bit:
                details = {
                    "distance_km": st.jp_km,
                    "speed_kmh": st.jp_kmh,
                    "max_speed_kmh": c.cfg.max_speed_kmh,
                    "from": [c.prev_lat, c.prev_lon],
                    "from_ts": c.prev_ts,
                }
                c.emit.raise_(st, c.plan, self.type, c.ts, c.lat, c.lon, details)
        elif c.fix == FIX_OK and st.active & self.bit and c.ts - st.jp_ts >= c.cfg.gps_jump_quiet_s:
            c.emit.resolve(st, c.plan, self.type, c.ts, "quiet")

    def on_time(self, c: Ctx, st: TrackerState) -> None:
        if st.active & self.bit and c.ts - st.jp_ts >= c.cfg.gps_jump_quiet_s:
            c.emit.resolve(st, c.plan, self.type, st.jp_ts + c.cfg.gps_jump_quiet_s, "quiet")

    def deadline(self, c: Ctx, st: TrackerState) -> float:
        if st.active & self.bit:
            return float(st.jp_ts + c.cfg.gps_jump_quiet_s)
        return INF
