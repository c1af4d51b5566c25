"""The engine's trips: compiled plans by trip and by tracker, and every trip's zones in the zone index.

Split out of anomaly/engine.py: the engine asks which trackers a change of trips touched and re-queues
their timers; this module only keeps the books.
"""

from __future__ import annotations

import logging
from bisect import insort
from collections.abc import Mapping, Sequence

from anomaly.base import Emitter
from anomaly.phase import TripPlan, plan_version
from anomaly.state import TrackerState
from anomaly.zones import DESTINATION, ORIGIN, ZoneIndex
from kawal.trips import Trip

log = logging.getLogger(__name__)


class TripBook:
    def __init__(self, zones: ZoneIndex, emit: Emitter) -> None:
        self._zones = zones
        self._emit = emit
        self.plans: dict[str, TripPlan] = {}
        self.by_tracker: dict[str, list[TripPlan]] = {}  # each sorted by (depart_after, trip_id)

    def set_trips(self, trips: Sequence[Trip], states: Mapping[str, TrackerState]) -> set[str]:
        """Replace the whole set of trips; returns the trackers touched. Unchanged trips (same updated_at)
        keep their compiled plan."""
        touched: set[str] = set()
        seen: set[str] = set()
        for trip in trips:
            seen.add(trip.trip_id)
            old = self.plans.get(trip.trip_id)
            if old is not None and old.version is not None and old.version == plan_version(trip):
                continue
            self.put(trip, states, touched)
        for trip_id in [t for t in self.plans if t not in seen]:
            self.drop(trip_id, touched)
        return touched

    def put(self, trip: Trip, states: Mapping[str, TrackerState], touched: set[str]) -> None:
        try:
            plan = TripPlan(trip)
        except Exception:
            self._emit.count("trips_rejected")
            log.exception("trip %s cannot be used for detection", trip.trip_id)
            return
        if trip.trip_id in self.plans:
            self.drop(trip.trip_id, touched)
            st = states.get(plan.tracker_id)
            if st is not None and st.trip == plan.trip_id:
                st.hint = 0  # the route or the zones may have changed under a running trip
                st.sc_cls = -1
        self.plans[plan.trip_id] = plan
        plans = self.by_tracker.setdefault(plan.tracker_id, [])
        insort(plans, plan, key=lambda p: (p.depart_after, p.trip_id))
        o, d = plan.origin, plan.dest
        self._zones.add(plan.trip_id, ORIGIN, o.lat, o.lon, o.r, o.name)
        self._zones.add(plan.trip_id, DESTINATION, d.lat, d.lon, d.r, d.name)
        touched.add(plan.tracker_id)

    def drop(self, trip_id: str, touched: set[str]) -> None:
        plan = self.plans.pop(trip_id)
        plans = self.by_tracker.get(plan.tracker_id)
        if plans is not None:
            plans[:] = [p for p in plans if p.trip_id != trip_id]
            if not plans:
                del self.by_tracker[plan.tracker_id]
        self._zones.remove(trip_id, ORIGIN, plan.origin.lat, plan.origin.lon, plan.origin.r)
        self._zones.remove(trip_id, DESTINATION, plan.dest.lat, plan.dest.lon, plan.dest.r)
        touched.add(plan.tracker_id)
