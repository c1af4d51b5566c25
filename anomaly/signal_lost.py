"""signal_lost (major): the tracker of a trip in transit has been silent for more than max_silence_min.

Any reading counts as signal, with or without a fix. Silence is measured from the later of the last
reading and departure; the alert's ts is the last reading before the silence (departure if there was
none). An `offline` status does not end the trip: the silence after it is still signal_lost.

The clock decides while the silence lasts (`tick`). When a reading ends a silence no tick saw (under
KAWAL_CLOCK=event a lone tracker's silence does not move the clock), the gap is raised and resolved at
once, so the incident is recorded either way, exactly once. Resolves when readings resume.
"""

from __future__ import annotations

import math

from alerts.model import AlertType
from anomaly.base import INF, Ctx, Detector
from anomaly.phase import Phase
from anomaly.state import TrackerState


class SignalLostDetector(Detector):
    type = AlertType.SIGNAL_LOST
    phases = frozenset({Phase.TRANSIT})

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        plan = c.plan
        assert plan is not None
        start = c.prev_last if c.prev_last > plan.depart_after else plan.depart_after
        # Resume an open alert, or record a silence that no tick saw (raise, then resolve at once).
        ended = st.active & self.bit or (
            c.ts - start > plan.max_silence_s and self._raise(c, st, c.prev_last, c.ts, retrospective=True)
        )
        if ended:
            c.emit.resolve(st, plan, self.type, c.ts, "signal_resumed", {"silent_s": _silent(c.ts, start)})

    def on_time(self, c: Ctx, st: TrackerState) -> None:
        plan = c.plan
        assert plan is not None
        if not st.active & self.bit and c.ts - max(st.last_ts, plan.depart_after) > plan.max_silence_s:
            self._raise(c, st, st.last_ts, c.ts, retrospective=False)

    def deadline(self, c: Ctx, st: TrackerState) -> float:
        plan = c.plan
        if plan is None or st.active & self.bit:
            return INF
        return max(st.last_ts, plan.depart_after) + plan.max_silence_s + 0.001

    def _raise(self, c: Ctx, st: TrackerState, last: float, now: float, retrospective: bool) -> bool:
        plan = c.plan
        assert plan is not None
        began = last if math.isfinite(last) else plan.depart_after
        details: dict[str, object] = {
            "last_reading": None if not math.isfinite(last) else last,
            "silent_s": _silent(now, max(last, plan.depart_after)),
            "max_silence_min": plan.max_silence_s / 60.0,
        }
        if st.status is not None:
            details["status"] = st.status
        if retrospective:
            details["retrospective"] = True
        lat, lon = (st.fx_lat, st.fx_lon) if st.has_fix else (None, None)
        return c.emit.raise_(st, plan, self.type, began, lat, lon, details)


def _silent(now: float, since: float) -> float | None:
    return round(now - since, 1) if math.isfinite(since) else None
