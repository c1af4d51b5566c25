"""Rejected payloads (CONTRACT 2.5), newest first, for operators to see what trackers sent wrong."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.auth import Viewer
from api.deps import Ctx
from api.routers.common import errors
from api.schemas import RejectedItem, RejectedList
from ingest.readings import truncate_payload
from kawal.timeutil import rfc3339

router = APIRouter(prefix="/api/v1/rejected", tags=["rejected"])


def rejected_item(row: dict[str, Any]) -> RejectedItem:
    # Stored already truncated to 4 KiB on a character boundary (ingest.readings.truncate_payload).
    raw = truncate_payload(bytes(row.get("payload") or b""))
    try:
        payload, encoding = raw.decode("utf-8"), "text"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return RejectedItem(
        received_at=rfc3339(float(row["received_at"])) or "",
        topic=str(row["topic"]),
        reason=str(row["reason"]),
        detail=None if row.get("detail") is None else str(row["detail"]),
        payload=payload,
        payload_encoding=encoding,
    )


@router.get("", response_model=RejectedList, summary="Rejected payloads, newest first", responses=errors())
def list_rejected(
    principal: Viewer,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many (default 100)")] = 100,
) -> RejectedList:
    """Each item: `received_at`, `topic`, `reason` (code), `detail`, and the `payload` truncated to 4 KiB,
    as text, or as base64 when it is not UTF-8 (`payload_encoding` says which)."""
    return RejectedList(items=[rejected_item(r) for r in ctx.readings.rejected(limit)])
