"""The HTTP API (CONTRACT section 2): `create_app(ctx)` builds the FastAPI application."""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.store import AlertStore
from api.crates import CrateCache
from api.deps import AppContext
from api.routers import (
    alerts,
    boundaries,
    crates,
    custody,
    meta,
    notifications,
    ops,
    rejected,
    tokens,
    trackers,
    trips,
)
from kawal import __version__
from kawal.metrics import Metrics

log = logging.getLogger(__name__)

DESCRIPTION = """
Kawal watches sealed election-logistics crates in transit and raises alerts.

Every `/api/v1` request carries `Authorization: Bearer <token>`. Roles: **viewer** (every GET),
**operator** (also acknowledge and resolve alerts), **admin** (also trips, trackers and tokens).
A missing or unknown token gets `401`, a role that is too low `403`. `/healthz` and `/metrics` need no token.

Times are returned as RFC 3339 in UTC and accepted as RFC 3339 or Unix seconds.
"""

TAGS = [
    {"name": "trips", "description": "Planned legs of a crate's journey (CONTRACT 2.2)."},
    {"name": "alerts", "description": "Alerts, their lifecycle, and the live stream (CONTRACT 2.3)."},
    {"name": "crates", "description": "Crate status, track, fleet list and summary (CONTRACT 2.4)."},
    {"name": "custody", "description": "Handovers, chain of custody and receipts (CONTRACT 2.6)."},
    {"name": "trackers", "description": "The tracker registry and crate bindings."},
    {"name": "tokens", "description": "API tokens (CONTRACT 2.5)."},
    {"name": "notifications", "description": "Webhook and email channels for alerts (CONTRACT 2.7)."},
    {"name": "rejected", "description": "Rejected tracker payloads (CONTRACT 2.5)."},
    {"name": "meta", "description": "The caller, the dashboard's settings."},
    {"name": "places", "description": "Kecamatan and desa boundaries (CONTRACT 2.3, version 2)."},
    {"name": "audit", "description": "The hash-chained audit trail."},
    {"name": "operations", "description": "Health and Prometheus metrics (no token)."},
]


def create_app(
    ctx: AppContext, *, sse_ping_s: float = 15.0, crate_cache_s: float = 2.0, sse_send_timeout_s: float | None = None
) -> FastAPI:
    app = FastAPI(
        title="Kawal API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    app.state.ctx = ctx
    app.state.sse_ping_s = sse_ping_s
    # A stalled stream client is dropped after this; the others are not held up by it.
    app.state.sse_send_timeout_s = sse_send_timeout_s or ctx.settings.sse_send_timeout_s
    app.state.crate_cache = CrateCache(ttl_s=crate_cache_s)
    for module in (trips, alerts, crates, custody, trackers, tokens, rejected, meta, ops, boundaries, notifications):
        app.include_router(module.router)
    _include_dashboard(app)
    app.add_exception_handler(StarletteHTTPException, _AllowFix(app))
    _register_alert_gauge(ctx.metrics, ctx.alerts)
    app.add_middleware(RequestMetrics, metrics=ctx.metrics)
    return app


class _AllowFix:
    """A 405 lists every method of the path in `Allow` (Starlette lists only the first route's, since
    GET and PUT of one path are separate routes)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], set[str]]] | None = None

    def _methods(self, path: str) -> set[str]:
        if self._table is None:
            table = []
            for template, ops in self.app.openapi().get("paths", {}).items():
                pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
                table.append((re.compile(f"^{pattern}$"), {m.upper() for m in ops}))
            self._table = table
        out: set[str] = set()
        for regex, methods in self._table:
            if regex.match(path):
                out |= methods
        if "GET" in out:
            out.add("HEAD")
        return out

    async def __call__(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            methods = self._methods(request.url.path)
            if methods:
                headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
                exc = StarletteHTTPException(405, exc.detail, headers)
        return await http_exception_handler(request, exc)


def _include_dashboard(app: FastAPI) -> None:
    """The ops page, when its package is there (api/dashboard/router.py exposes `router`)."""
    try:
        module = importlib.import_module("api.dashboard.router")
    except ModuleNotFoundError as e:
        if e.name in ("api.dashboard", "api.dashboard.router"):
            return
        raise
    app.include_router(module.router)


class _OpenAlerts(Collector):
    """kawal_alerts_open{type}: unresolved alerts now, read at scrape time."""

    def __init__(self, alerts: AlertStore) -> None:
        self.alerts = alerts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("kawal_alerts_open", "Unresolved alerts, by type", labels=["type"])
        try:
            for alert_type, n in sorted(self.alerts.open_by_type().items()):
                g.add_metric([alert_type], n)
        except Exception:  # a scrape must not fail because the database is busy
            log.exception("could not count open alerts")
        yield g

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("kawal_alerts_open", "Unresolved alerts, by type", labels=["type"])


def _register_alert_gauge(metrics: Metrics, alerts: AlertStore) -> None:
    # Already registered when an earlier app used the same registry.
    with contextlib.suppress(ValueError):
        metrics.registry.register(_OpenAlerts(alerts))


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """kawal_http_requests_total{method,route,status} and kawal_http_request_seconds{method,route}.

    Labelled by route template (e.g. /api/v1/alerts/{alert_id}), never the raw path, so ids cannot blow
    up the number of series. A pure ASGI middleware so that streaming responses pass straight through.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            if method not in _METHODS:
                method = "OTHER"
            self.metrics.http_requests.labels(method=method, route=path, status=str(status)).inc()
            self.metrics.http_seconds.labels(method=method, route=path).observe(time.perf_counter() - start)
