"""Crate status: which tracker and trip a crate has now, where it was last seen, and its state.

The state is a view for people (dashboard, summary), computed from the trip and the latest fix:
`alerting` when the crate's tracker has an unresolved alert; else `in_storage` before the trip's
`depart_after` (or with no trip); `arrived` when the latest fix since departure is inside the destination
zone; otherwise `in_transit`. The detectors keep the authoritative arrival timers; this view needs only
stored data, so it is the same in every process reading the database.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from api.deps import AppContext
from api.schemas import CRATE_STATES, Crate, CrateState, DistrictCount, Fix, Summary, TrackPoint
from devices.reading import Reading
from kawal.timeutil import rfc3339
from kawal.trips import Trip, bound_trip

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def fix_out(r: Reading) -> Fix:
    assert r.lat is not None and r.lon is not None
    return Fix(ts=rfc3339(r.ts) or "", lat=r.lat, lon=r.lon, acc=r.acc, spd=r.spd, hdg=r.hdg, bat=r.bat)


def track_point(r: Reading) -> TrackPoint:
    return TrackPoint(**fix_out(r).model_dump(), seal=r.seal)


def district_of(trip: Trip | None) -> str | None:
    if trip is None:
        return None
    extra = trip.model_extra or {}
    d = extra.get("district")
    return str(d) if d not in (None, "") else trip.destination.name


def crate_state(trip: Trip | None, fix: Reading | None, open_alerts: int, now: float) -> CrateState:
    if open_alerts > 0:
        return "alerting"
    if trip is None or now < trip.depart_after:
        return "in_storage"
    if fix is not None and fix.lat is not None and fix.lon is not None and fix.ts >= trip.depart_after:
        dest = trip.destination
        if distance_m(fix.lat, fix.lon, dest.lat, dest.lon) <= dest.radius_m:
            return "arrived"
    return "in_transit"


def build_crate(
    ctx: AppContext,
    crate_id: str,
    crate_trips: list[Trip],
    registry_tracker: str | None,
    open_counts: dict[str, int],
    now: float,
) -> Crate:
    trip = bound_trip(crate_trips, now)
    tracker_id = trip.tracker_id if trip is not None else registry_tracker
    latest = fix = None
    seal: tuple[str, float] | None = None
    if tracker_id is not None:
        latest = ctx.readings.latest(tracker_id)
        fix = ctx.readings.latest_fix(tracker_id)
        seal = ctx.readings.last_seal(tracker_id)
    n_open = open_counts.get(tracker_id, 0) if tracker_id is not None else 0
    return Crate(
        crate_id=crate_id,
        tracker_id=tracker_id,
        trip_id=trip.trip_id if trip is not None else None,
        last_seen=rfc3339(latest.ts) if latest is not None else None,
        seal=seal[0] if seal is not None else None,  # type: ignore[arg-type]
        last_fix=fix_out(fix) if fix is not None else None,
        seal_at=rfc3339(seal[1]) if seal is not None else None,
        state=crate_state(trip, fix, n_open, now),
        district=district_of(trip),
        destination=trip.destination.name if trip is not None else None,
        open_alerts=n_open,
    )


def one_crate(ctx: AppContext, crate_id: str) -> Crate | None:
    trips = ctx.trips.list(crate_id=crate_id)
    row = ctx.registry.by_crate(crate_id)
    if not trips and row is None:
        return None
    tracker = str(row["tracker_id"]) if row is not None else None
    return build_crate(ctx, crate_id, trips, tracker, ctx.alerts.open_counts(), ctx.clock.now())


def all_crates(ctx: AppContext) -> tuple[list[Crate], float]:
    """Every crate known from trips or the tracker registry, sorted by id; and the time used."""
    now = ctx.clock.now()
    by_crate: dict[str, list[Trip]] = defaultdict(list)
    for t in ctx.trips.list():
        by_crate[t.crate_id].append(t)
    registry: dict[str, str] = {}
    for row in ctx.registry.list():
        crate = row.get("crate_id")
        if crate and crate not in registry:
            registry[str(crate)] = str(row["tracker_id"])
    open_counts = ctx.alerts.open_counts()
    ids = sorted(set(by_crate) | set(registry))
    return [build_crate(ctx, c, by_crate.get(c, []), registry.get(c), open_counts, now) for c in ids], now


def summarise(ctx: AppContext, crates: list[Crate], at: float) -> Summary:
    by_state: dict[str, int] = dict.fromkeys(CRATE_STATES, 0)
    districts: dict[str | None, dict[str, int]] = {}
    for c in crates:
        by_state[c.state] += 1
        d = districts.setdefault(c.district, dict.fromkeys(CRATE_STATES, 0))
        d[c.state] += 1
    open_by_type = ctx.alerts.open_by_type()
    return Summary(
        total=len(crates),
        by_state=by_state,
        by_district=[
            DistrictCount(district=name, total=sum(counts.values()), by_state=counts)
            for name, counts in sorted(districts.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ],
        open_alerts=sum(open_by_type.values()),
        open_alerts_by_type=open_by_type,
        at=rfc3339(at) or "",
    )


class CrateCache:
    """The full crate list, recomputed at most every `ttl_s` seconds, so many open dashboards cost one
    computation (it reads every trip and three rows per tracker)."""

    def __init__(self, ttl_s: float = 2.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: tuple[list[Crate], float] | None = None
        self._expires = 0.0

    def get(self, ctx: AppContext) -> tuple[list[Crate], float]:
        with self._lock:  # one computation at a time; the others wait for its result
            if self._value is None or self._monotonic() >= self._expires:
                self._value = all_crates(ctx)
                self._expires = self._monotonic() + self.ttl_s
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None
