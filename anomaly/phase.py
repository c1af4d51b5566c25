"""Trips as the detectors see them, which trip a tracker is bound to, and where in it the crate is.

CONTRACT 2.2: storage before ``depart_after``; in transit until the crate comes to rest (2 minutes)
inside its destination zone; storage again after arrival.
"""

from __future__ import annotations

import math
from enum import IntEnum

from anomaly.config import DetectionConfig
from anomaly.geometry import Circle, RouteIndex
from anomaly.state import NAN, TrackerState
from kawal.geodesy import LocalFrame
from kawal.timeutil import rfc3339
from kawal.trips import Trip


class Phase(IntEnum):
    NONE = 0  # bound to no trip
    BEFORE = 1  # storage at the origin, before depart_after
    TRANSIT = 2
    ARRIVED = 3  # storage at the destination, after arrival


STORAGE = frozenset({Phase.BEFORE, Phase.ARRIVED})
ANY_PHASE = frozenset(Phase)


class TripPlan:
    """A trip compiled for detection: times as floats, zones and route in a local metre frame.

    It holds no reference to the pydantic Trip, whose route (a list of tuples) costs ten times more.
    """

    __slots__ = (
        "arrive_by",
        "corridor_m",
        "crate_id",
        "depart_after",
        "dest",
        "ended",
        "frame",
        "max_silence_s",
        "max_stop_s",
        "open_after",
        "origin",
        "route",
        "stops",
        "tracker_id",
        "trip_id",
        "version",
    )

    def __init__(self, trip: Trip) -> None:
        self.trip_id = trip.trip_id
        self.tracker_id = trip.tracker_id
        self.crate_id = trip.crate_id
        self.depart_after = float(trip.depart_after)
        self.arrive_by = float(trip.arrive_by)
        self.corridor_m = float(trip.corridor_m)
        self.max_stop_s = float(trip.max_stop_min) * 60.0
        self.max_silence_s = float(trip.max_silence_min) * 60.0
        lat0, lon0 = trip.route[0]
        frame = LocalFrame(float(lat0), float(lon0))
        self.frame = frame
        self.route = RouteIndex(frame, list(trip.route))
        o, d = trip.origin, trip.destination
        self.origin = Circle(frame, o.lat, o.lon, o.radius_m, o.name)
        self.dest = Circle(frame, d.lat, d.lon, d.radius_m, d.name)
        self.open_after = None if d.open_after is None else float(d.open_after)
        self.stops = tuple(Circle(frame, s.lat, s.lon, s.radius_m, s.name) for s in trip.stops)
        # A handover ends the trip (CONTRACT 2.6): storage at the destination from then on.
        self.ended = math.inf if trip.handover_at is None else float(trip.handover_at)
        self.version = plan_version(trip)


def plan_version(trip: Trip) -> object:
    """What decides whether a compiled plan is still current (None: always recompile).

    `updated_at` as the stored JSON writes it (RFC 3339, milliseconds), so a Trip handed over by the API
    (full precision) and the same trip read back from the database compare equal.
    """
    return None if trip.updated_at is None else (rfc3339(trip.updated_at), trip.tracker_id)


def bound_plan(plans: list[TripPlan] | None, at: float) -> TripPlan | None:
    """Same rule as kawal.trips.bound_trip, on a list kept sorted by (depart_after, trip_id)."""
    if not plans:
        return None
    last = plans[-1]
    if last.depart_after <= at or len(plans) == 1:
        return last
    for p in reversed(plans):
        if p.depart_after <= at:
            return p
    return plans[0]


def next_departure(plans: list[TripPlan] | None, at: float) -> float:
    """The first depart_after later than `at`: when the binding or the phase changes by itself."""
    if plans:
        for p in plans:
            if p.depart_after > at:
                return p.depart_after
    return float("inf")


def phase_at(st: TrackerState, plan: TripPlan | None, t: float) -> Phase:
    if plan is None:
        return Phase.NONE
    if t < plan.depart_after:
        return Phase.BEFORE
    if (st.trip == plan.trip_id and st.arrived <= t) or plan.ended <= t:  # NaN compares False: not arrived
        return Phase.ARRIVED
    return Phase.TRANSIT


def update_arrival(
    cfg: DetectionConfig, st: TrackerState, plan: TripPlan, ts: float, fix_ok: bool, x: float, y: float
) -> bool:
    """Track the stay inside the destination zone; True when this reading confirms arrival.

    Any later reading (with or without a fix: crates are carried indoors) confirms the 2-minute rest, as long
    as no accepted fix has been outside the zone meanwhile. Arrival time is when the stay began.
    """
    if fix_ok:
        d = plan.dest
        if d.dist(x, y) <= d.r + cfg.zone_margin_m:
            if st.dest_since != st.dest_since:
                st.dest_since = ts
        else:
            st.dest_since = NAN
    since = st.dest_since
    if since == since and ts - since >= cfg.arrival_rest_s:
        st.arrived = since
        st.dest_since = NAN
        return True
    return False
