"""The crate views before the materialised tracker state, verbatim but for names (api/crates.py and
api/routers/crates.py as they were): the `before` of benchmarks/crates.py, served on /legacy/... routes."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from api.auth import Viewer
from api.deps import AppContext
from api.schemas import CRATE_STATES, Crate, CrateList, CrateState, DistrictCount, Summary
from devices.reading import Reading
from kawal.geodesy import distance_m
from kawal.timeutil import rfc3339
from kawal.trips import Trip, bound_trip


def _legacy_fix_out(r: Reading) -> Any:
    from api.schemas import Fix

    assert r.lat is not None and r.lon is not None
    return Fix(ts=rfc3339(r.ts) or "", lat=r.lat, lon=r.lon, acc=r.acc, spd=r.spd, hdg=r.hdg, bat=r.bat)


def _legacy_district_of(trip: Trip | None) -> str | None:
    if trip is None:
        return None
    extra = trip.model_extra or {}
    d = extra.get("district")
    return str(d) if d not in (None, "") else trip.destination.name


def _legacy_state(trip: Trip | None, fix: Reading | None, open_alerts: int, now: float) -> CrateState:
    if open_alerts > 0:
        return "alerting"
    if trip is None or now < trip.depart_after:
        return "in_storage"
    if fix is not None and fix.lat is not None and fix.lon is not None and fix.ts >= trip.depart_after:
        dest = trip.destination
        if distance_m(fix.lat, fix.lon, dest.lat, dest.lon) <= dest.radius_m:
            return "arrived"
    return "in_transit"


def _legacy_build(
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
        seal=seal[0] if seal is not None else None,
        last_fix=_legacy_fix_out(fix) if fix is not None else None,
        seal_at=rfc3339(seal[1]) if seal is not None else None,
        state=_legacy_state(trip, fix, n_open, now),
        district=_legacy_district_of(trip),
        destination=trip.destination.name if trip is not None else None,
        open_alerts=n_open,
    )


def legacy_one_crate(ctx: AppContext, crate_id: str) -> Crate | None:
    trips = ctx.trips.list(crate_id=crate_id)
    row = ctx.registry.by_crate(crate_id)
    if not trips and row is None:
        return None
    tracker = str(row["tracker_id"]) if row is not None else None
    return _legacy_build(ctx, crate_id, trips, tracker, ctx.alerts.open_counts(), ctx.clock.now())


def legacy_all_crates(ctx: AppContext) -> tuple[list[Crate], float]:
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
    return [_legacy_build(ctx, c, by_crate.get(c, []), registry.get(c), open_counts, now) for c in ids], now


def legacy_summarise(ctx: AppContext, crates: list[Crate], at: float) -> Summary:
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


legacy = APIRouter()


@legacy.get("/legacy/api/v1/crates", response_model=CrateList)
def legacy_list(
    request: Request,
    principal: Viewer,
    state: Annotated[list[CrateState] | None, Query()] = None,
    district: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CrateList:
    crates, _ = legacy_all_crates(request.app.state.ctx)
    if state:
        wanted = set(state)
        crates = [c for c in crates if c.state in wanted]
    if district is not None:
        crates = [c for c in crates if c.district == district]
    return CrateList(items=crates[offset : offset + limit], total=len(crates))


@legacy.get("/legacy/api/v1/summary", response_model=Summary)
def legacy_summary(request: Request, principal: Viewer) -> Summary:
    ctx = request.app.state.ctx
    crates, at = legacy_all_crates(ctx)
    return legacy_summarise(ctx, crates, at)


@legacy.get("/legacy/api/v1/crates/{crate_id}", response_model=Crate)
def legacy_get(crate_id: str, request: Request, principal: Viewer) -> Crate:
    crate = legacy_one_crate(request.app.state.ctx, crate_id)
    if crate is None:
        raise HTTPException(404, "no such crate")
    return crate
