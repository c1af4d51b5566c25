"""seal_break (critical): the seal reads open or tampered when that is not expected.

Expected only inside the destination zone at or after the trip's `destination.open_after`: then the
opening is counted as expected, with no alert. Seal readings are never filtered: a seal state is read
from readings without a fix, with a bad fix, and from late (out-of-order) readings, which raise at once
unless they fall inside an open episode already seen. Never resolves by itself (evidence); a seal that
goes `tampered` -> `closed` updates the alert with the flip (details `flipped_to`, `closed_at`).
"""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.base import Ctx, Detector
from anomaly.phase import Phase, TripPlan
from anomaly.state import SEAL_CODES, SEAL_NAMES, SEAL_OPEN, SEAL_TAMPERED, TrackerState


class SealDetector(Detector):
    type = AlertType.SEAL_BREAK
    trip_scoped = False

    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        r = c.reading
        if r is None or r.seal is None:
            return
        new = SEAL_CODES.get(r.seal, 0)
        if new == 0:
            return
        old = st.seal
        ts = r.ts
        if new >= SEAL_OPEN:
            if old < SEAL_OPEN:
                st.seal_ts = ts
                st.add_seal_episode(ts, float("inf"))
                st.active &= ~self.bit  # a new episode: it raises again, even if the last one is still open
            if old != new or not st.active & self.bit:
                if self.expected(c, st, c.plan):
                    if old != new:
                        c.emit.count("seal_expected_opening")
                    st.active |= self.bit  # nothing to raise for this episode
                else:
                    self._raise(c, st, old, new, late=False)
        else:
            if old >= SEAL_OPEN:
                st.close_seal_episode(ts)
            if old == SEAL_TAMPERED and st.active & self.bit and not self.expected(c, st, c.plan):
                self._flip(c, st, ts)
            st.active &= ~self.bit
        st.seal = new

    def _flip(self, c: Ctx, st: TrackerState, ts: float) -> None:
        """`tampered` -> `closed` is never a resolution (a sensor cut off and put back, or a tracker taken off
        its crate): the alert stays open and its details record the flip."""
        lat, lon = _position(c, st)
        details: dict[str, object] = {
            "seal": "tampered",
            "flipped_to": "closed",
            "tampered_at": st.seal_ts,
            "closed_at": ts,
        }
        if c.plan is not None:
            details["phase"] = c.phase.name.lower()
        c.emit.count("seal_flip")
        c.emit.raise_(st, c.plan, self.type, st.seal_ts, lat, lon, details)

    def on_late(self, c: Ctx, st: TrackerState) -> None:
        """A reading older than the tracker's latest: only its seal state matters."""
        r = c.reading
        if r is None or r.seal is None:
            return
        new = SEAL_CODES.get(r.seal, 0)
        if new < SEAL_OPEN or st.in_seal_episode(r.ts):
            return
        st.add_seal_episode(r.ts, r.ts)
        if self.expected(c, st, c.plan):
            c.emit.count("seal_expected_opening")
            return
        self._raise(c, st, 0, new, late=True)

    def _raise(self, c: Ctx, st: TrackerState, old: int, new: int, late: bool) -> None:
        r = c.reading
        assert r is not None
        lat, lon = _position(c, st)
        details: dict[str, object] = {"seal": SEAL_NAMES[new], "previous": SEAL_NAMES[old]}
        if late:
            details["late"] = True
        plan = c.plan
        if plan is not None:
            details["phase"] = c.phase.name.lower()
            if plan.open_after is not None:
                details["open_after"] = plan.open_after
        before = st.active & self.bit
        c.emit.raise_(st, plan, self.type, r.ts, lat, lon, details)
        if late:  # a late raise says nothing about the current episode
            st.active = (st.active & ~self.bit) | before

    @staticmethod
    def expected(c: Ctx, st: TrackerState, plan: TripPlan | None) -> bool:
        r = c.reading
        if plan is None or plan.open_after is None or r is None or r.ts < plan.open_after:
            return False
        cfg = c.cfg
        if r.has_position:
            assert r.lat is not None and r.lon is not None
            lat, lon = r.lat, r.lon
            acc = cfg.default_acc_m if r.acc is None else min(r.acc, cfg.max_acc_m)
        elif st.has_fix:
            lat, lon, acc = st.fx_lat, st.fx_lon, st.fx_acc
        else:
            # No position at all: a crate that arrived and has not been seen leaving is still there.
            return c.phase == Phase.ARRIVED
        x, y = plan.frame.to_xy(lat, lon)
        return plan.dest.dist(x, y) <= plan.dest.r + max(cfg.zone_margin_m, acc)


def _position(c: Ctx, st: TrackerState) -> tuple[float | None, float | None]:
    """The reading's own position, else the last accepted fix."""
    r = c.reading
    if r is not None and r.has_position:
        return r.lat, r.lon
    if st.has_fix:
        return st.fx_lat, st.fx_lon
    return None, None
