"""low_battery (warning): the battery reads below `low_battery_pct` (15 %, CONTRACT 2.3).

Resolves when a reading shows at least `low_battery_clear_pct` (20 %): a charged or replaced battery.
The 5-point hysteresis keeps a battery wobbling around 15 % from flapping. Late readings are ignored.
"""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.base import Ctx, Detector
from anomaly.state import TrackerState


class LowBatteryDetector(Detector):
    type = AlertType.LOW_BATTERY
    trip_scoped = False

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        r = c.reading
        if r is None or r.bat is None:
            return
        bat = r.bat
        if st.active & self.bit:
            if bat >= c.cfg.low_battery_clear_pct:
                c.emit.resolve(st, c.plan, self.type, r.ts, "recharged", {"bat": bat})
        elif bat < c.cfg.low_battery_pct:
            lat, lon = (r.lat, r.lon) if r.has_position else (None, None)
            details = {"bat": bat, "threshold": c.cfg.low_battery_pct}
            c.emit.raise_(st, c.plan, self.type, r.ts, lat, lon, details)
