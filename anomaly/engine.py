"""The detection engine: readings and clock ticks in, AlertEvents out, one tracker state per tracker.

- `process(readings)`: a batch in arrival order, any trackers. Each run of one tracker's consecutive
  readings (a message) is sorted by event time; duplicates are dropped; a reading older than the tracker's
  latest is *late* and only its seal is read (it cannot fake a jump, a deviation or a stop). In-order
  readings are screened (anomaly.gps), update the stop cluster and the arrival, then run every detector
  that applies in the trip's phase. Under the event clock the clock moves on inside the batch, so the
  alerts do not depend on where the feed was cut into batches or where the ticks fell.
- `tick(now)`: time-driven checks for the trackers whose next deadline has come (signal_lost, overdue,
  gps_jump quiet time, the next departure). `now` is whatever clock the service runs on; the engine
  never reads a clock itself.
- `snapshot()` / `restore()` (anomaly/engine_state.py): the tracker states (timers, open alerts,
  clusters), so a restart mid-trip keeps its timers and raises no twins. Trips are not in the snapshot:
  the service sets them again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from alerts.model import NEVER_AUTO_RESOLVE, AlertEvent, AlertType
from anomaly.base import BIT, INF, Ctx, Detector, Emitter
from anomaly.config import DetectionConfig
from anomaly.detectors import default_detectors, reading_order
from anomaly.engine_state import EngineStates
from anomaly.gps import FIX_JUMP, FIX_NAMES, FIX_NONE, FIX_OK, FIX_STALE, screen
from anomaly.motion import update_cluster
from anomaly.phase import Phase, TripPlan, bound_plan, next_departure, phase_at, update_arrival
from anomaly.seal import SealDetector
from anomaly.spoofing import SpoofingDetector
from anomaly.state import NEG_INF, TrackerState
from anomaly.timers import Timers
from anomaly.trip_book import TripBook
from anomaly.zones import ZoneIndex
from devices.reading import Reading
from kawal.trips import Trip

log = logging.getLogger(__name__)

_JUMP_BIT = BIT[AlertType.GPS_JUMP]
_OVERDUE_BIT = BIT[AlertType.OVERDUE]
_PHASE_END_REASON = {
    Phase.NONE: "no_trip",
    Phase.BEFORE: "before_departure",
    Phase.TRANSIT: "departed",
    Phase.ARRIVED: "arrived",
}


class DetectionEngine(EngineStates):
    def __init__(
        self,
        sink: Callable[[AlertEvent], object],
        config: DetectionConfig | None = None,
        detectors: Sequence[Detector] | None = None,
    ) -> None:
        self.cfg = config or DetectionConfig()
        self.stats: dict[str, int] = {}
        self._emit = Emitter(sink, self.stats)
        self._zones = ZoneIndex(self.cfg.zone_cell_deg, self.cfg.zone_big_radius_m)
        self._ctx = Ctx(self.cfg, self._emit, self._zones)
        self.detectors: tuple[Detector, ...] = tuple(detectors) if detectors is not None else default_detectors()
        self._seal = next((d for d in self.detectors if isinstance(d, SealDetector)), None)
        self._spoof = next((d for d in self.detectors if isinstance(d, SpoofingDetector)), None)
        # Per phase: the detectors that run, those with time-driven checks, those whose alerts end there.
        self._run = {p: tuple(d for d in self.detectors if p in d.phases) for p in Phase}
        self._timed = {p: tuple(d for d in self._run[p] if type(d).deadline is not Detector.deadline) for p in Phase}
        self._end = {
            p: tuple(d for d in self.detectors if p not in d.phases and d.type not in NEVER_AUTO_RESOLVE) for p in Phase
        }
        self._book = TripBook(self._zones, self._emit)
        self._plans = self._book.plans  # the same dicts, never replaced
        self._by_tracker = self._book.by_tracker
        self._states: dict[str, TrackerState] = {}
        self._timers = Timers()
        self._now = NEG_INF  # the latest tick's time

    # ---- trips ------------------------------------------------------------------------------------

    def set_trips(self, trips: Sequence[Trip]) -> None:
        """Replace the whole set of trips. Unchanged trips (same updated_at) keep their compiled plan."""
        self._refresh(self._book.set_trips(trips, self._states))

    def upsert_trip(self, trip: Trip) -> None:
        touched: set[str] = set()
        self._book.put(trip, self._states, touched)
        self._refresh(touched)

    def _refresh(self, trackers: set[str]) -> None:
        for tid in trackers:
            st = self._states.get(tid)
            if st is None:
                st = self._states[tid] = TrackerState(tid)
            self._reschedule(st)

    # ---- readings ---------------------------------------------------------------------------------

    def process(self, readings: Sequence[Reading]) -> None:
        """New readings in arrival order, from any trackers (a live batch or a store-and-forward backlog).

        Each run of consecutive readings of one tracker (a message, or several back to back) is sorted by
        event time, so a shuffled backlog array gives the same events. Under the event clock the clock
        moves on after each run, and a tracker whose timer falls due before its run arrives is checked at
        that moment first: the alerts are those of the same messages fed one by one with a tick after each.
        """
        n = len(readings)
        event = self.cfg.clock == "event"
        states = self._states
        i = 0
        while i < n:
            r = readings[i]
            tid = r.tracker_id
            top = r.ts
            j = i + 1
            while j < n and readings[j].tracker_id == tid:
                if readings[j].ts > top:
                    top = readings[j].ts
                j += 1
            rs = [r] if j == i + 1 else sorted(readings[i:j], key=reading_order)
            st = states.get(tid)
            if st is None:
                st = states[tid] = TrackerState(tid)
            trip = st.trip
            due = event and 0 < st.sched <= self._now
            try:
                if due:  # a tick before these readings arrived would have woken it
                    self._timers.cancel(st)
                    self._tick_tracker(st, self._now)
                self._process_tracker(st, rs)
            except Exception:
                self._emit.count("errors")
                log.exception("detection failed for tracker %s", tid)
            if due or not (st.sched and st.trip == trip and self._still_early(st)):
                self._reschedule(st)
            if event and top > self._now:
                self._now = top
            i = j

    def _still_early(self, st: TrackerState) -> bool:
        """Is the queued wake-up still no later than any deadline these readings could have created?

        Readings only push the silence deadline later; the deadline they can bring forward is a new
        gps_jump's. A wake-up that turns out early just re-evaluates and queues again.
        """
        sched = st.sched
        if st.active & _JUMP_BIT and sched > st.jp_ts + self.cfg.gps_jump_quiet_s:
            return False
        plan = self._plans.get(st.trip) if st.trip is not None else None
        if plan is None:
            return True
        # overdue's deadline comes back when a crate leaves its destination zone before its rest ended
        return not (sched > plan.arrive_by and not st.active & _OVERDUE_BIT and st.arrived != st.arrived)

    def _process_tracker(self, st: TrackerState, rs: list[Reading]) -> None:
        stats = self.stats
        plans = self._by_tracker.get(st.tid)
        tol = self.cfg.future_tolerance_s  # only ever > 0 with wall-clock ticks (see DetectionConfig)
        future_limit = self._now + tol if tol > 0 and self._now > NEG_INF else INF
        prev: tuple[float, int] | None = None
        for r in rs:
            ts = r.ts
            seq = -1 if r.seq is None else r.seq
            key = (ts, seq)
            if key == prev or (ts == st.last_ts and seq == st.last_seq):
                stats["duplicate"] = stats.get("duplicate", 0) + 1
                continue
            prev = key
            if ts < st.last_ts:
                stats["late"] = stats.get("late", 0) + 1
                self._late(st, plans, r)
                continue
            if ts > future_limit:
                stats["future"] = stats.get("future", 0) + 1
                self._late(st, plans, r)
                continue
            self._reading(st, plans, r, ts, seq)

    def _reading(self, st: TrackerState, plans: list[TripPlan] | None, r: Reading, ts: float, seq: int) -> None:
        cfg = self.cfg
        c = self._ctx
        plan = bound_plan(plans, ts)
        if (None if plan is None else plan.trip_id) != st.trip:
            plan = self._bind(st, plans, ts)
        c.plan = plan
        c.reading = r
        c.ts = ts
        c.prev_last = st.last_ts
        c.prev_seq = st.last_seq
        st.last_ts = ts
        st.last_seq = seq
        c.prev_lat = st.fx_lat
        c.prev_lon = st.fx_lon
        c.prev_ts = st.fx_ts
        fix = screen(cfg, st, r)
        c.fix = fix
        c.moved = False
        if fix in (FIX_OK, FIX_JUMP, FIX_STALE):
            assert r.lat is not None and r.lon is not None
            gap = INF if plan is None else plan.max_silence_s
            c.lat = r.lat
            c.lon = r.lon
            c.acc = cfg.default_acc_m if r.acc is None else r.acc
            if fix == FIX_OK:
                if plan is not None:
                    c.x, c.y = plan.frame.to_xy(r.lat, r.lon)
                c.moved = update_cluster(cfg, st, r.lat, r.lon, c.acc, ts, gap)
            elif fix == FIX_STALE:
                # The receiver holds its last position: no new fix for the corridor or the storage zone,
                # but evidence for the stop cluster that the crate has not moved.
                c.moved = update_cluster(cfg, st, r.lat, r.lon, c.acc, ts, gap)
        if fix != FIX_OK and fix != FIX_NONE:
            name = FIX_NAMES[fix]
            self.stats[name] = self.stats.get(name, 0) + 1
        phase = phase_at(st, plan, ts)
        if phase is Phase.TRANSIT:
            assert plan is not None
            if update_arrival(cfg, st, plan, ts, fix == FIX_OK, c.x, c.y):
                phase = Phase.ARRIVED
                self._emit.count("arrivals")
        c.phase = phase
        if st.active:
            self._end_phase(st, c)
        for det in self._run[phase]:
            det.on_reading(c, st)

    def _late(self, st: TrackerState, plans: list[TripPlan] | None, r: Reading) -> None:
        seal = self._seal is not None and r.seal is not None and r.seal != "closed"
        spoof = self._spoof is not None and r.seq is not None
        if not (seal or spoof):
            return
        c = self._ctx
        plan = bound_plan(plans, r.ts)
        c.plan = plan
        c.reading = r
        c.ts = r.ts
        c.fix = FIX_NONE
        c.moved = False
        c.phase = phase_at(st, plan, r.ts)
        if seal and self._seal is not None:
            self._seal.on_late(c, st)
        if spoof and self._spoof is not None:
            self._spoof.on_late(c, st)

    def _bind(self, st: TrackerState, plans: list[TripPlan] | None, t: float) -> TripPlan | None:
        """Bind the tracker to its trip at `t` and return that trip.

        When the tracker passes one or more departures at once (a batch or a pause between ticks spanning
        them, a tracker heard again after hours), each trip it leaves first gets its time-driven checks just
        before the next one took over, as ticks in between would have: the silence or lateness of a trip
        is recorded even when no tick fell inside it.
        """
        plan = bound_plan(plans, t)
        target = None if plan is None else plan.trip_id
        cur = self._plans.get(st.trip) if st.trip is not None else None
        if cur is None and plans:  # first binding, or its trip was removed: from the latest reading's trip
            cur = bound_plan(plans, st.last_ts)
            if cur is not None and cur.trip_id != target and st.trip != cur.trip_id:
                self._switch(st, cur, st.last_ts if st.last_ts > cur.depart_after else cur.depart_after)
        while cur is not None and cur.trip_id == st.trip and cur.trip_id != target:
            nd = next_departure(plans, cur.depart_after)
            if not nd <= t:
                break
            self._evaluate(st, cur, nd - 0.001)
            cur = bound_plan(plans, nd)
            self._switch(st, cur, nd)
        if st.trip != target:
            self._switch(st, plan, t)
        return plan

    def _switch(self, st: TrackerState, plan: TripPlan | None, ts: float) -> None:
        """The tracker is bound to another trip (or none): end the old trip's alerts and memory."""
        if st.active:
            old = self._plans.get(st.trip) if st.trip is not None else None
            for det in self.detectors:
                if det.trip_scoped and st.active & det.bit:
                    self._emit.resolve(st, old, det.type, ts, "trip_changed")
        st.reset_trip()
        st.trip = None if plan is None else plan.trip_id

    def _end_phase(self, st: TrackerState, c: Ctx) -> None:
        for det in self._end[c.phase]:
            if st.active & det.bit:
                self._emit.resolve(st, c.plan, det.type, c.ts, _PHASE_END_REASON[c.phase])

    def on_status(self, tracker_id: str, status: str, at: float) -> None:
        """An MQTT status (online/offline). It ends nothing: silence after `offline` is still signal_lost."""
        st = self._states.get(tracker_id)
        if st is None:
            if tracker_id not in self._by_tracker:
                return
            st = self._states[tracker_id] = TrackerState(tracker_id)
        st.status = status
        st.status_at = at

    # ---- time -------------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Run the time-driven checks that are due at `now` (wall time, or event time under replay)."""
        if now > self._now:
            self._now = now
        for tid in self._timers.pop_due(now):
            st = self._states.get(tid)
            if st is None:
                continue
            st.sched = 0
            try:
                self._tick_tracker(st, now)
            except Exception:
                self._emit.count("errors")
                log.exception("time-driven detection failed for tracker %s", tid)
            self._reschedule(st)

    def _tick_tracker(self, st: TrackerState, now: float) -> None:
        t = now if now > st.last_ts else st.last_ts  # never evaluate a tracker before its own latest reading
        plan = self._bind(st, self._by_tracker.get(st.tid), t)
        self._evaluate(st, plan, t)

    def _evaluate(self, st: TrackerState, plan: TripPlan | None, t: float) -> None:
        """The time-driven checks of the tracker's current trip at `t`, with no new reading."""
        c = self._ctx
        c.plan = plan
        c.reading = None
        c.ts = t
        c.fix = FIX_NONE
        c.moved = False
        c.phase = phase_at(st, plan, t)
        if st.active:
            self._end_phase(st, c)
        for det in self._run[c.phase]:
            det.on_time(c, st)

    def _reschedule(self, st: TrackerState) -> None:
        c = self._ctx
        plans = self._by_tracker.get(st.tid)
        if not plans and not st.active:
            self._timers.cancel(st)
            return
        t = self._now if self._now > st.last_ts else st.last_ts
        if t == NEG_INF:  # no time known yet: nothing can be due before the first departure
            if plans:
                self._timers.at(st, plans[0].depart_after)
            return
        plan = bound_plan(plans, t)
        if (None if plan is None else plan.trip_id) != st.trip:
            when = t  # a change of trip is due now
        else:
            c.plan = plan
            c.ts = t
            c.phase = phase_at(st, plan, t)
            when = next_departure(plans, t)
            for det in self._timed[c.phase]:
                d = det.deadline(c, st)
                if d < when:
                    when = d
        if when == INF:
            self._timers.cancel(st)
            return
        if when <= self._now:
            when = self._now + 1.0  # due but not acted on (e.g. the sink failed): retry shortly
        if st.sched and st.sched <= math.ceil(when):
            return  # an earlier wake-up is already queued; it will re-evaluate and queue again
        self._timers.at(st, when)
