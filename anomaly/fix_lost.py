"""fix_lost (major): a trip in transit whose tracker keeps reporting, but with no usable fix, for longer than
the trip's max_silence_min.

A GPS jammer costs a few dollars. The tracker is not silent (signal_lost never fires) and route_deviation
has no usable fix to judge, while the lorry leaves its route. No usable fix: no position, Null Island, or
an accuracy worse than `fix_lost_acc_m` (a jammed receiver's accuracy climbs to hundreds of metres).

The time counts from the first reading without a usable fix (in transit), and is judged at each reading (a
tracker that stops reporting altogether is signal_lost's business, not this one's). A gap in the readings
longer than max_silence_min is signal_lost too: the episode starts again after it, so a silence is never
counted twice. `ts` = the first reading without a usable fix; `lat`/`lon` = the last usable fix.
Resolves (`fix_regained`) at the next usable fix, and on arrival or a change of trip.
"""

from __future__ import annotations

import math

from alerts.model import AlertType
from anomaly.base import Ctx, Detector
from anomaly.gps import FIX_OK, FIX_STALE
from anomaly.phase import Phase
from anomaly.state import NAN, TrackerState


class FixLostDetector(Detector):
    type = AlertType.FIX_LOST
    phases = frozenset({Phase.TRANSIT})

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        plan = c.plan
        assert plan is not None
        r = c.reading
        assert r is not None
        usable = c.fix in (FIX_OK, FIX_STALE) and (r.acc is None or r.acc <= c.cfg.fix_lost_acc_m)
        if usable:
            if st.active & self.bit:
                c.emit.resolve(
                    st,
                    plan,
                    self.type,
                    c.ts,
                    "fix_regained",
                    {"no_fix_s": round(c.ts - st.nf_ts, 1), "readings": st.nf_n},
                )
            st.uf_ts = c.ts
            st.nf_ts = NAN
            st.nf_n = 0
            return
        if st.nf_ts != st.nf_ts or c.ts - c.prev_last > plan.max_silence_s:
            # A new episode; after a silence (signal_lost's) the fix-less time starts again here.
            st.nf_ts = c.ts
            st.nf_n = 0
        st.nf_n += 1
        if st.active & self.bit:
            return
        # From the first reading without a usable fix: the fix was lost at most one interval before it.
        since = st.nf_ts if st.nf_ts > plan.depart_after else plan.depart_after
        if c.ts - since <= plan.max_silence_s:
            return
        lat, lon = (st.fx_lat, st.fx_lon) if st.has_fix else (None, None)
        details: dict[str, object] = {
            "no_fix_s": round(c.ts - since, 1),
            "readings": st.nf_n,
            "last_fix": None if not math.isfinite(st.uf_ts) else st.uf_ts,
            "reason": _reason(c),
            "max_silence_min": plan.max_silence_s / 60.0,
        }
        if r.acc is not None:
            details["acc_m"] = r.acc
        c.emit.raise_(st, plan, self.type, st.nf_ts, lat, lon, details)


def _reason(c: Ctx) -> str:
    r = c.reading
    assert r is not None
    if r.lat is None or r.lon is None:
        return "no_position"
    if r.lat == 0.0 and r.lon == 0.0:
        return "null_island"
    if r.acc is not None and r.acc > c.cfg.fix_lost_acc_m:
        return "poor_accuracy"
    return "rejected_fix"
