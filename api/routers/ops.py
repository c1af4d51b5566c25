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
            "description": "not ready: `reasons` lists why (not subscribed to the broker, stores not open, the "
            "store refuses writes, ingest behind past its bound), `reason` joins them",
            "content": {
                "application/json": {
                    "example": {
                        "status": "unavailable",
                        "reason": "connection to the MQTT broker at 10.0.0.5:1883 lost, reconnecting; cannot "
                        "write to the store: database or disk is full",
                        "reasons": [
                            "connection to the MQTT broker at 10.0.0.5:1883 lost, reconnecting",
                            "cannot write to the store: database or disk is full",
                        ],
                    }
                }
            },
        },
        200: {"content": {"application/json": {"example": {"status": "ok"}}}},
    },
)
def healthz(ctx: Ctx) -> JSONResponse:
    """200 while the service is subscribed to the broker, its stores are open and take writes, and ingest
    keeps up; 503 otherwise, with the reasons. `status` is `starting` until the service was first ready,
    `unavailable` after."""
    try:
        problems = ctx.health.problems()
    except Exception as e:
        problems = [f"health check failed: {type(e).__name__}"]
    if not problems:
        return JSONResponse({"status": "ok"})
    status = "unavailable" if ctx.health.was_ready else "starting"
    return JSONResponse({"status": status, "reason": "; ".join(problems), "reasons": problems}, status_code=503)


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
