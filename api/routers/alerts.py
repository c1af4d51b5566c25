"""Alerts (CONTRACT 2.3): list with filters, one alert, acknowledge, resolve, and the live stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Body, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sse_starlette import EventSourceResponse, ServerSentEvent

from alerts.model import Alert, AlertStatus, AlertType
from alerts.store import AlertConflict, AlertNotFound
from api.auth import Operator, Viewer
from api.deps import AppContext, Ctx
from api.routers.common import TIME_DOC, errors, time_param
from api.schemas import ALERT_EXAMPLE, AlertList, NoteIn

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

REPLAY_PAGE = 500
RETRY_MS = 2000  # the reconnection delay suggested to EventSource clients

AlertId = Annotated[str, Path(max_length=64, description="alert id", examples=["01JDB7Z3Q5M9X8Y2K4N6P0R1ST"])]
NoteBody = Annotated[
    NoteIn | None,
    Body(
        openapi_examples={
            "note": {"summary": "with a note", "value": {"note": "escort called; driver reached"}},
            "empty": {"summary": "without a note", "value": {}},
        }
    ),
]
_ONE = {"content": {"application/json": {"example": ALERT_EXAMPLE}}}


@router.get("", response_model=AlertList, summary="List alerts, newest first", responses=errors())
def list_alerts(
    principal: Viewer,
    ctx: Ctx,
    trip_id: Annotated[str | None, Query(max_length=64)] = None,
    crate_id: Annotated[str | None, Query(max_length=64)] = None,
    tracker_id: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[list[AlertType] | None, Query(description="repeat for several types")] = None,
    status: Annotated[
        list[AlertStatus] | None, Query(description="repeat for several; default: every status")
    ] = None,
    since: Annotated[
        str | None,
        Query(
            description=f"raised at or after this time; {TIME_DOC}", examples=["2024-11-20T07:00:00+07:00"]
        ),
    ] = None,
    until: Annotated[str | None, Query(description=f"raised before this time; {TIME_DOC}")] = None,
    kecamatan: Annotated[
        list[str] | None,
        Query(
            description="the kecamatan of the alert's place, by name or area code, in any case; repeat for "
            "several (version 2)",
            examples=["Diwek"],
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="at most this many (default 100, at most 1000)")
    ] = 100,
) -> AlertList:
    items = ctx.alerts.list(
        trip_id=trip_id,
        crate_id=crate_id,
        tracker_id=tracker_id,
        types=type,
        statuses=status,
        since=time_param("since", since),
        until=time_param("until", until),
        limit=limit,
        kecamatan=kecamatan,
    )
    return AlertList(items=items)


@router.get(
    "/stream",
    summary="Live stream of alert changes (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={
        **errors(),
        200: {
            "description": "`text/event-stream`: one event per alert change; `data` is the Alert as JSON, "
            "`id` increases. Without Last-Event-ID the stream starts with an event that has only an `id` "
            "(the current position) and `retry`. Comment lines (`: ping`) are heartbeats.",
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "description": "one event (OpenAPI 3.1: the schema of each event of the stream)",
                        "required": ["id"],
                        "properties": {
                            "id": {"type": "string", "description": "increasing event id; resume after it"},
                            "data": {
                                "type": "string",
                                "description": "the Alert as JSON",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/Alert"},
                            },
                        },
                    },
                    "example": 'id: 42\ndata: {"id": "01JDB7Z3Q5M9X8Y2K4N6P0R1ST", '
                    '"type": "seal_break", ...}\n\n',
                }
            },
        },
    },
)
async def stream_alerts(
    request: Request,
    principal: Viewer,
    ctx: Ctx,
    last_event_id_header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID", description="resume after this event id: every change since is replayed"
        ),
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="the same as the Last-Event-ID header")
    ] = None,
) -> EventSourceResponse:
    """Each event is one alert change (raised, updated, acknowledged, resolved). Reconnect with
    `Last-Event-ID` (the browser's EventSource does it by itself) to get every change that was missed,
    in order; without it the stream starts with an id-only event that tells the client its position.
    A client that reads too slowly is caught up from the stored changes instead of queueing
    without bound; one that takes no bytes for KAWAL_SSE_SEND_TIMEOUT_S (30 s) is disconnected."""
    resume = _event_id(last_event_id_header)
    if resume is None:
        resume = last_event_id
    ping_s: float = request.app.state.sse_ping_s
    send_timeout_s: float = request.app.state.sse_send_timeout_s

    async def events() -> AsyncIterator[ServerSentEvent]:
        sub = ctx.broadcaster.subscribe()  # before reading the position: no change can fall in between
        ctx.metrics.sse_clients.inc()
        try:
            current = await run_in_threadpool(ctx.alerts.last_event_id)
            if resume is None or resume > current:  # no id, or one we never gave: start from now
                last = current
                # An event with only an id: the client's position, so a reconnect misses nothing even
                # when no change has arrived yet (EventSource records the id without firing an event).
                yield ServerSentEvent(id=str(last), retry=RETRY_MS)
            else:
                last = resume
                async for ev in _replay(ctx, last):
                    last = int(ev.id or last)
                    yield ev
            while True:
                item = await sub.next()
                if item is None:  # the service is stopping
                    return
                if item == "lagged":  # the queue overflowed: catch up from the table
                    sub.lagged = False
                    sub.drain()
                    async for ev in _replay(ctx, last):
                        last = int(ev.id or last)
                        yield ev
                    continue
                assert isinstance(item, tuple)
                event_id, data = item
                if event_id <= last:
                    continue
                if event_id > last + 1:
                    # Changes committed by other threads may be published out of order: fill the gap.
                    async for ev in _replay(ctx, last):
                        last = int(ev.id or last)
                        yield ev
                    if event_id <= last:
                        continue
                last = event_id
                yield ServerSentEvent(data=data, id=str(event_id))
        finally:
            ctx.broadcaster.unsubscribe(sub)
            ctx.metrics.sse_clients.dec()

    return EventSourceResponse(
        events(), ping=ping_s, send_timeout=send_timeout_s, headers={"Cache-Control": "no-store"}
    )


async def _replay(ctx: AppContext, after: int) -> AsyncIterator[ServerSentEvent]:
    """Stored changes after `after`, page by page (memory stays bounded however far behind)."""
    while True:
        rows = await run_in_threadpool(ctx.alerts.events_after_raw, after, REPLAY_PAGE)
        for event_id, data in rows:
            yield ServerSentEvent(data=data, id=str(event_id))
            after = event_id
        if len(rows) < REPLAY_PAGE:
            return


def _event_id(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(value.strip())
    except ValueError:
        return None  # not one of ours: start from now
    return n if n >= 0 else None


@router.get(
    "/{alert_id}",
    response_model=Alert,
    summary="One alert",
    responses={**errors(404, not_found="no such alert"), 200: _ONE},
)
def get_alert(alert_id: AlertId, principal: Viewer, ctx: Ctx) -> Alert:
    alert = ctx.alerts.get(alert_id)
    if alert is None:
        raise HTTPException(404, "no such alert")
    return alert


def _act(ctx: AppContext, alert_id: str, actor: str, body: NoteIn | None, resolve: bool) -> Alert:
    note = body.note if body is not None else None
    try:
        if resolve:
            return ctx.alerts.resolve(alert_id, actor, note)
        return ctx.alerts.ack(alert_id, actor, note)
    except AlertNotFound as e:
        raise HTTPException(404, "no such alert") from e
    except AlertConflict as e:
        raise HTTPException(409, str(e)) from e


@router.post(
    "/{alert_id}/ack",
    response_model=Alert,
    summary="Acknowledge an alert",
    responses={**errors(400, 404, 409, not_found="no such alert"), 200: _ONE},
)
def ack_alert(alert_id: AlertId, principal: Operator, ctx: Ctx, body: NoteBody = None) -> Alert:
    """Marks the alert acknowledged, recording the token's name, the time and the note. Acknowledging
    again adds another history entry. A resolved alert cannot be acknowledged (409)."""
    return _act(ctx, alert_id, principal.name, body, resolve=False)


@router.post(
    "/{alert_id}/resolve",
    response_model=Alert,
    summary="Resolve an alert",
    responses={**errors(400, 404, 409, not_found="no such alert"), 200: _ONE},
)
def resolve_alert(alert_id: AlertId, principal: Operator, ctx: Ctx, body: NoteBody = None) -> Alert:
    """Resolves the alert, recording the token's name, the time and the note. If the condition comes
    back later, a new alert is raised. Resolving a resolved alert is a 409."""
    return _act(ctx, alert_id, principal.name, body, resolve=True)
