"""/healthz and /metrics: no token needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Ctx
from api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Ready to serve",
    responses={
        503: {
            "model": Health,
            "description": "not subscribed to the broker yet, or stores not open; `reason` says which",
            "content": {
                "application/json": {
                    "example": {"status": "starting", "reason": "connection refused to 10.0.0.5:1883, retrying"}
                }
            },
        },
        200: {"content": {"application/json": {"example": {"status": "ok"}}}},
    },
)
def healthz(ctx: Ctx) -> JSONResponse:
    """200 once the service is subscribed to the broker and its stores are open; 503 before that, with the
    reason (e.g. the broker refuses connections)."""
    try:
        ready = bool(ctx.health.ready())
        reason = None if ready else ctx.health.reason()
    except Exception as e:
        ready, reason = False, f"health check failed: {type(e).__name__}"
    if ready:
        return JSONResponse({"status": "ok"})
    body: dict[str, str] = {"status": "starting"}
    if reason:
        body["reason"] = reason
    return JSONResponse(body, status_code=503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {
                CONTENT_TYPE_LATEST: {
                    "schema": {"type": "string"},
                    "example": 'kawal_alerts_raised_total{type="seal_break"} 1.0\n',
                }
            },
        }
    },
)
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
