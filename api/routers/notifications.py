"""Notification channels (CONTRACT 2.7), admin only, and where each alert was sent (viewer)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Response
from pydantic import BaseModel

from api.auth import Admin, Viewer
from api.deps import AppContext, Ctx
from api.routers.common import errors
from notify.model import NAME_PATTERN, ChannelIn, ChannelOut, DeliveryOut
from notify.store import ChannelNotFound, NotifyStore

router = APIRouter(tags=["notifications"])

ChannelName = Annotated[str, Path(pattern=NAME_PATTERN, description="channel name", examples=["ppk-diwek"])]
_EXAMPLES = {
    "webhook": {
        "summary": "a webhook for seal breaks and route deviations in Diwek, escalated after 15 minutes",
        "value": {
            "kind": "webhook",
            "url": "https://bridge.example.org/kawal",
            "secret": "a-long-random-secret",
            "types": ["seal_break", "route_deviation"],
            "min_severity": "major",
            "kecamatan": ["Diwek"],
            "escalate_after_min": 15,
        },
    },
    "email": {
        "summary": "email to the PPK chair for every critical alert",
        "value": {"kind": "email", "to": ["ketua.ppk@example.org"], "min_severity": "critical"},
    },
}


class ChannelList(BaseModel):
    items: list[ChannelOut]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


def _store(ctx: AppContext) -> NotifyStore:
    return NotifyStore(ctx.db, ctx.audit)


@router.get("/api/v1/notifications", response_model=ChannelList, summary="List channels", responses=errors())
def list_channels(principal: Admin, ctx: Ctx) -> ChannelList:
    """Every channel, without its secret, with the number of deliveries still pending."""
    store = _store(ctx)
    return ChannelList(items=[store.show(ch) for ch in store.channels()])


@router.get(
    "/api/v1/notifications/{name}",
    response_model=ChannelOut,
    summary="One channel",
    responses=errors(404, not_found="no such channel"),
)
def get_channel(name: ChannelName, principal: Admin, ctx: Ctx) -> ChannelOut:
    store = _store(ctx)
    ch = store.channel(name)
    if ch is None:
        raise HTTPException(404, "no such channel")
    return store.show(ch)


@router.put(
    "/api/v1/notifications/{name}",
    response_model=ChannelOut,
    summary="Create or replace a channel",
    responses=errors(400),
)
def put_channel(
    name: ChannelName,
    body: Annotated[ChannelIn, Body(openapi_examples=_EXAMPLES)],
    principal: Admin,
    ctx: Ctx,
) -> ChannelOut:
    """A webhook gets a signed `POST` per event; an email channel a message in Bahasa Indonesia through
    `KAWAL_SMTP_URL`. `types` and `kecamatan` filter (empty means all); `min_severity` is the least severe
    alert sent. The `secret` is never returned; when a webhook is replaced without one, the stored one is
    kept. Answers `200` with the stored channel, new or replaced (as `PUT /api/v1/trips/{trip_id}` does)."""
    store = _store(ctx)
    try:
        ch, _ = store.put(name, body, principal.name, time.time())
    except ValueError as e:
        raise HTTPException(422, str(e)) from e
    return store.show(ch)


@router.delete(
    "/api/v1/notifications/{name}",
    status_code=204,
    summary="Remove a channel",
    responses=errors(404, not_found="no such channel"),
)
def delete_channel(name: ChannelName, principal: Admin, ctx: Ctx) -> Response:
    """Its pending deliveries are dropped; the record of delivered ones stays with the alerts."""
    try:
        _store(ctx).delete(name, principal.name)
    except ChannelNotFound as e:
        raise HTTPException(404, "no such channel") from e
    return Response(status_code=204)


@router.get(
    "/api/v1/alerts/{alert_id}/deliveries",
    response_model=DeliveryList,
    summary="Where an alert was sent",
    tags=["alerts"],
    responses=errors(),
)
def alert_deliveries(
    alert_id: Annotated[str, Path(max_length=64, description="alert id")], principal: Viewer, ctx: Ctx
) -> DeliveryList:
    """Each event of the alert for each channel, oldest first: whether it was delivered, the attempts so far
    and the last error. Empty when no channel took the alert."""
    return DeliveryList(items=_store(ctx).deliveries(alert_id))
