"""Trackers: the registry, and binding a tracker to a crate (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from api.auth import Admin, Viewer
from api.deps import Ctx
from api.routers.common import errors
from api.schemas import Tracker, TrackerIn, TrackerList
from kawal.timeutil import rfc3339
from kawal.trips import ID_PATTERN

router = APIRouter(prefix="/api/v1/trackers", tags=["trackers"])

TrackerId = Annotated[str, Path(pattern=ID_PATTERN, description="tracker id", examples=["TRK-0001"])]


def tracker_out(row: dict[str, Any]) -> Tracker:
    def t(key: str) -> str | None:
        v = row.get(key)
        return None if v is None else rfc3339(float(v))

    return Tracker(
        tracker_id=str(row["tracker_id"]),
        crate_id=row.get("crate_id"),
        status=row.get("status"),
        status_at=t("status_at"),
        created_at=t("created_at"),
    )


@router.get("", response_model=TrackerList, summary="Every known tracker", responses=errors())
def list_trackers(principal: Viewer, ctx: Ctx) -> TrackerList:
    """Trackers seen on MQTT or bound by an admin, with their last status message and crate."""
    return TrackerList(items=[tracker_out(r) for r in ctx.registry.list()])


@router.get(
    "/{tracker_id}",
    response_model=Tracker,
    summary="One tracker",
    responses=errors(404, not_found="no such tracker"),
)
def get_tracker(tracker_id: TrackerId, principal: Viewer, ctx: Ctx) -> Tracker:
    row = ctx.registry.get(tracker_id)
    if row is None:
        raise HTTPException(404, "no such tracker")
    return tracker_out(row)


@router.put(
    "/{tracker_id}", response_model=Tracker, summary="Bind a tracker to a crate", responses=errors(400)
)
def bind_tracker(
    tracker_id: TrackerId, body: TrackerIn, principal: Admin, ctx: Ctx, request: Request
) -> Tracker:
    """Fixes the tracker to `crate_id` (null detaches it); creates the tracker if it is new. Recorded in
    the audit log."""
    before = ctx.registry.get(tracker_id)
    ctx.registry.assign(tracker_id, body.crate_id)
    with ctx.db.write() as c:
        ctx.audit.append(
            c,
            principal.name,
            "tracker.assign",
            f"tracker:{tracker_id}",
            {"crate_id": body.crate_id, "previous_crate_id": before.get("crate_id") if before else None},
        )
    request.app.state.crate_cache.invalidate()
    row = ctx.registry.get(tracker_id)
    assert row is not None
    return tracker_out(row)
