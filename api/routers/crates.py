"""Crates (CONTRACT 2.4): status and track; plus the fleet list and summary the dashboard needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request

from api.auth import Viewer
from api.crates import CrateCache, crate_page, one_crate, summarise, track_point
from api.routers.common import TIME_DOC, errors, time_param
from api.schemas import Crate, CrateList, CrateState, FixList, Summary

router = APIRouter(tags=["crates"])

CrateId = Annotated[
    str, Path(max_length=64, description="crate id, [A-Za-z0-9._-]{1,64}", examples=["JBG-KS-0001"])
]


def _cache(request: Request) -> CrateCache:
    cache: CrateCache = request.app.state.crate_cache
    return cache


@router.get(
    "/api/v1/crates", response_model=CrateList, summary="Every crate with its state", responses=errors()
)
def list_crates(
    request: Request,
    principal: Viewer,
    state: Annotated[list[CrateState] | None, Query(description="only these states (repeatable)")] = None,
    district: Annotated[str | None, Query(max_length=200, description="only this district")] = None,
    kecamatan: Annotated[
        str | None,
        Query(max_length=200, description="only crates whose latest fix lies in this kecamatan (name or code)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="at most this many")] = 10_000,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1, description="skip this many first")] = 0,
) -> CrateList:
    """Crates known from trips or the tracker registry, by id, each with its tracker, current trip,
    district, state (`in_storage`, `in_transit`, `arrived`, `alerting`), latest fix, seal and number of
    unresolved alerts. The list is computed at most every 2 s and shared by all callers."""
    ctx = request.app.state.ctx
    fleet = _cache(request).get(ctx)
    name = None if kecamatan is None else ctx.alerts.kecamatan_name(kecamatan)
    return crate_page(fleet, state, district, limit, offset, kecamatan=name)


@router.get(
    "/api/v1/summary",
    response_model=Summary,
    summary="Crate counts per state and per district",
    responses=errors(),
)
def summary(request: Request, principal: Viewer) -> Summary:
    ctx = request.app.state.ctx
    return summarise(ctx, _cache(request).get(ctx))


@router.get(
    "/api/v1/crates/{crate_id}",
    response_model=Crate,
    summary="One crate's status",
    responses=errors(404, not_found="no such crate"),
)
def get_crate(crate_id: CrateId, request: Request, principal: Viewer) -> Crate:
    """`crate_id`, `tracker_id`, `trip_id`, `last_seen`, `seal` and `last_fix` (`{ts, lat, lon, acc, spd,
    hdg, bat}` or null), plus the extensions of the crate list."""
    crate = one_crate(request.app.state.ctx, crate_id)
    if crate is None:
        raise HTTPException(404, "no such crate")
    return crate


@router.get(
    "/api/v1/crates/{crate_id}/track",
    response_model=FixList,
    summary="A crate's track",
    responses=errors(404, not_found="no such crate"),
)
def get_track(
    crate_id: CrateId,
    request: Request,
    principal: Viewer,
    since: Annotated[str | None, Query(description=f"from this time on (inclusive); {TIME_DOC}")] = None,
    until: Annotated[str | None, Query(description=f"up to this time (inclusive); {TIME_DOC}")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="at most this many fixes")] = 10_000,
) -> FixList:
    """Every stored reading of the crate's tracker that has a position, exactly once, in time order."""
    ctx = request.app.state.ctx
    t0, t1 = time_param("since", since), time_param("until", until)
    crate = one_crate(ctx, crate_id)
    if crate is None:
        raise HTTPException(404, "no such crate")
    if crate.tracker_id is None:
        return FixList(items=[])
    readings = ctx.readings.track(crate.tracker_id, t0, t1, limit)
    return FixList(items=[track_point(r) for r in readings])  # track() holds positions only
