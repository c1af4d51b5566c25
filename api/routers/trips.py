"""Trips (CONTRACT 2.2): create or replace (admin), read one, list."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from api.auth import Admin, Viewer
from api.deps import AppContext, Ctx
from api.manifest import trip_audit_data
from api.routers.common import errors
from api.schemas import TRIP_EXAMPLE, TripList
from kawal.trips import ID_PATTERN, Trip, TripIn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/trips", tags=["trips"])
_TRIP = {"content": {"application/json": {"example": TRIP_EXAMPLE}}}

TripId = Annotated[
    str, Path(pattern=ID_PATTERN, description="trip id, [A-Za-z0-9._-]{1,64}", examples=["T-1"])
]


def notify_trip_changed(ctx: AppContext, trip: Trip) -> None:
    """Hand the new trip to detection; the trip is stored whatever happens here."""
    try:
        ctx.on_trip_changed(trip)
    except Exception:
        log.exception(
            "detection could not take trip %s; it is stored and will be picked up on reload", trip.trip_id
        )


@router.put(
    "/{trip_id}",
    response_model=Trip,
    summary="Create or replace a trip",
    responses={**errors(400), 200: {"description": "the stored trip", **_TRIP}},
)
def put_trip(trip_id: TripId, body: TripIn, principal: Admin, ctx: Ctx, request: Request) -> Trip:
    """Creates the trip, or replaces it whole. Answers with the stored trip. An invalid body gets 422
    with the reasons (route of fewer than 2 points, coordinates out of range, `arrive_by` not after
    `depart_after`, ...). Times are accepted as RFC 3339 or Unix seconds and returned as RFC 3339 UTC."""
    extra = body.model_extra or {}
    if "trip_id" in extra and extra["trip_id"] != trip_id:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "trip_id"),
                    "msg": "trip_id in the body differs from the one in the path",
                    "input": extra["trip_id"],
                }
            ]
        )
    with ctx.db.write() as c:
        trip, created = ctx.trips.put_in(c, trip_id, body, time.time())
        ctx.audit.append(
            c,
            principal.name,
            "trip.create" if created else "trip.update",
            f"trip:{trip_id}",
            trip_audit_data(trip),
        )
    request.app.state.crate_cache.invalidate()
    notify_trip_changed(ctx, trip)
    return trip


@router.get(
    "/{trip_id}",
    response_model=Trip,
    summary="One trip",
    responses={**errors(404, not_found="no such trip"), 200: _TRIP},
)
def get_trip(trip_id: TripId, principal: Viewer, ctx: Ctx) -> Trip:
    trip = ctx.trips.get(trip_id)
    if trip is None:
        raise HTTPException(404, "no such trip")
    return trip


@router.get("", response_model=TripList, summary="List trips", responses=errors())
def list_trips(
    principal: Viewer,
    ctx: Ctx,
    tracker_id: Annotated[str | None, Query(description="only this tracker's trips")] = None,
    crate_id: Annotated[str | None, Query(description="only this crate's trips")] = None,
    limit: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="at most this many (default: all)")] = None,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1, description="skip this many first")] = 0,
) -> TripList:
    """Every trip, ordered by `depart_after` then id: `{"items": [...]}`."""
    return TripList(items=ctx.trips.list(tracker_id=tracker_id, crate_id=crate_id, limit=limit, offset=offset))
