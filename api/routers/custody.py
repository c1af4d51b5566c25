"""Custody (CONTRACT 2.6): handovers, a crate's chain of custody, and its printable receipt."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse

from api.auth import Operator, Viewer
from api.custody import CustodyStore, Handover, HandoverConflict, HandoverIn, TripNotFound
from api.custody_view import CustodyList, custody
from api.deps import AppContext, Ctx
from api.receipt import render_receipt
from api.routers.common import errors
from api.routers.trips import TripId, notify_trip_changed

router = APIRouter(tags=["custody"])

CrateId = Annotated[str, Path(max_length=64, description="crate id, [A-Za-z0-9._-]{1,64}", examples=["JBG-KS-0001"])]


def custody_store(ctx: AppContext) -> CustodyStore:
    return CustodyStore(ctx.db, ctx.trips, ctx.alerts)


@router.post(
    "/api/v1/trips/{trip_id}/handover",
    status_code=201,
    response_model=Handover,
    summary="Record the handover that ends a trip",
    responses={**errors(400, 404, 409, not_found="no such trip"), 201: {"description": "the handover record"}},
)
def post_handover(trip_id: TripId, body: HandoverIn, principal: Operator, ctx: Ctx, request: Request) -> Handover:
    """The receiving officer signs for the crate: who received it, the seal numbers they read, and when
    (`at`, default now). Kawal adds the tracker's last fix at or before `at` and whether it lies inside the
    destination zone, compares the seals with the trip's `seals`, and ends the trip. A handover away from
    the destination, without any fix, or with other seals is still recorded, and raises
    `handover_mismatch` with the differences in `details`. Each handover is in the audit log; its
    `audit_hash` is printed on the receipt. A second handover of the same trip gets `409`."""
    try:
        handover, ended = custody_store(ctx).record(trip_id, body, principal.name, time.time())
    except TripNotFound:
        raise HTTPException(404, "no such trip") from None
    except HandoverConflict as e:
        raise HTTPException(409, str(e)) from None
    request.app.state.crate_cache.invalidate()
    notify_trip_changed(ctx, ended)
    return handover


@router.get(
    "/api/v1/crates/{crate_id}/custody",
    response_model=CustodyList,
    summary="A crate's chain of custody",
    responses=errors(404, not_found="no trips for this crate"),
)
def get_custody(crate_id: CrateId, principal: Viewer, ctx: Ctx) -> CustodyList:
    """Every leg of the crate in time order, each with its trip, its handover (or null), its seal events
    (changes of the seal sensor's state) and its alerts, plus `flags` for gaps in the chain."""
    legs = custody(ctx.db, ctx.trips, ctx.alerts, custody_store(ctx), crate_id)
    if legs is None:
        raise HTTPException(404, "no trips for this crate")
    return CustodyList(items=legs)


@router.get(
    "/api/v1/crates/{crate_id}/receipt",
    response_class=HTMLResponse,
    summary="A crate's printable custody receipt",
    responses={
        **errors(404, not_found="no trips for this crate"),
        200: {"content": {"text/html": {}}, "description": "a self-contained HTML page with a print stylesheet"},
    },
)
def get_receipt(crate_id: CrateId, principal: Viewer, ctx: Ctx) -> HTMLResponse:
    """The legs, the planned route against the actual track (inline SVG), the seal history, every alert
    with how it was resolved, and each handover with its `audit_hash`. Prints on A4; loads nothing else."""
    legs = custody(ctx.db, ctx.trips, ctx.alerts, custody_store(ctx), crate_id)
    if legs is None:
        raise HTTPException(404, "no trips for this crate")
    return HTMLResponse(render_receipt(crate_id, legs, ctx.db))
