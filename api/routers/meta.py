"""Who am I, the dashboard's configuration, and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Viewer
from api.deps import Ctx
from api.routers.common import errors
from api.schemas import AuditList, AuditRecordOut, ConfigOut, Me
from kawal import __version__
from kawal.timeutil import rfc3339

router = APIRouter(prefix="/api/v1", tags=["meta"])


@router.get("/me", response_model=Me, summary="The caller's token name and role", responses=errors())
def me(principal: Viewer) -> Me:
    return Me(name=principal.name, role=principal.role)


@router.get("/config", response_model=ConfigOut, summary="Settings the dashboard needs", responses=errors())
def config(principal: Viewer, ctx: Ctx) -> ConfigOut:
    now = ctx.clock.now()
    return ConfigOut(
        tile_url=ctx.settings.tile_url,
        version=__version__,
        clock=ctx.settings.clock,
        now=rfc3339(now) if now > 0 else None,  # an event clock before its first reading
    )


@router.get(
    "/audit",
    response_model=AuditList,
    summary="The audit trail, oldest first",
    tags=["audit"],
    responses=errors(),
)
def audit(
    principal: Viewer,
    ctx: Ctx,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="only records with seq greater than this")
    ] = 0,
    subject: Annotated[
        str | None, Query(max_length=200, description="e.g. `alert:<id>`, `trip:<id>`")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditList:
    """Hash-chained records of every alert change, trip change, tracker binding and token creation.
    Check the whole chain with `kawal audit verify`."""
    records = ctx.audit.records(after_seq=after, limit=limit, subject=subject)
    return AuditList(
        items=[
            AuditRecordOut(
                seq=r.seq,
                at=rfc3339(r.at) or "",
                actor=r.actor,
                action=r.action,
                subject=r.subject,
                data=r.data,
                prev_hash=r.prev_hash,
                hash=r.hash,
            )
            for r in records
        ]
    )
