"""The auth matrix: every endpoint with no token, an unknown token, a viewer, an operator and an admin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from alerts.model import AlertAction, AlertEvent, AlertType
from notify.model import ChannelIn
from notify.store import NotifyStore
from tests.api_harness import Harness, running_api, trip_body

ROLES = ["viewer", "operator", "admin"]
_CHANNEL = ChannelIn(kind="webhook", url="http://127.0.0.1:9/", secret="s")
RANK = {None: -1, "viewer": 0, "operator": 1, "admin": 2}

# (method, path template, role needed, JSON body)
ENDPOINTS: list[tuple[str, str, str, Any]] = [
    ("GET", "/api/v1/trips", "viewer", None),
    ("GET", "/api/v1/trips/{trip_id}", "viewer", None),
    ("PUT", "/api/v1/trips/{trip_id}", "admin", trip_body()),
    ("GET", "/api/v1/alerts", "viewer", None),
    ("GET", "/api/v1/alerts/stream", "viewer", None),
    ("GET", "/api/v1/alerts/{alert_id}", "viewer", None),
    ("POST", "/api/v1/alerts/{alert_id}/ack", "operator", {"note": "seen"}),
    ("POST", "/api/v1/alerts/{alert_id}/resolve", "operator", {"note": "done"}),
    ("GET", "/api/v1/crates", "viewer", None),
    ("GET", "/api/v1/crates/{crate_id}", "viewer", None),
    ("GET", "/api/v1/crates/{crate_id}/track", "viewer", None),
    ("GET", "/api/v1/summary", "viewer", None),
    ("GET", "/api/v1/trackers", "viewer", None),
    ("GET", "/api/v1/trackers/{tracker_id}", "viewer", None),
    ("PUT", "/api/v1/trackers/{tracker_id}", "admin", {"crate_id": "JBG-KS-0001"}),
    ("POST", "/api/v1/tokens", "admin", {"name": "new-token", "role": "viewer"}),
    ("DELETE", "/api/v1/tokens/{name}", "admin", None),
    ("GET", "/api/v1/rejected", "viewer", None),
    ("GET", "/api/v1/me", "viewer", None),
    ("GET", "/api/v1/config", "viewer", None),
    ("GET", "/api/v1/audit", "viewer", None),
    # Notifications (CONTRACT 2.7): channels are admin only, even to read (they name receivers).
    ("GET", "/api/v1/notifications", "admin", None),
    ("GET", "/api/v1/notifications/{name}", "admin", None),
    ("PUT", "/api/v1/notifications/{name}", "admin", {"kind": "webhook", "url": "http://127.0.0.1:9/", "secret": "s"}),
    ("DELETE", "/api/v1/notifications/{name}", "admin", None),
    ("GET", "/api/v1/alerts/{alert_id}/deliveries", "viewer", None),
    ("GET", "/api/v1/boundaries", "viewer", None),
    # Custody (CONTRACT 2.6): an operator records the handover; anyone may read the chain and the receipt.
    ("POST", "/api/v1/trips/{trip_id}/handover", "operator", {"receiver": {"name": "Siti Aminah", "role": "PPK"}}),
    ("GET", "/api/v1/crates/{crate_id}/custody", "viewer", None),
    ("GET", "/api/v1/crates/{crate_id}/receipt", "viewer", None),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, httpx.Client, dict[str, str]]]:
    with running_api(tmp_path_factory.mktemp("auth"), sse_ping_s=0.2) as (h, client):
        client.put("/api/v1/trips/T-1", json=trip_body(), headers=h.headers("admin")).raise_for_status()
        h.ctx.registry.assign("TRK-0001", "JBG-KS-0001")
        alert = h.ctx.alerts.apply(
            AlertEvent(
                action=AlertAction.RAISE,
                type=AlertType.LOW_BATTERY,
                tracker_id="TRK-0001",
                ts=1_732_065_000.0,
            )
        )
        assert alert is not None
        # A channel named like the token the matrix uses for {name}.
        NotifyStore(h.ctx.db).put("test-viewer", _CHANNEL, "test", time.time())
        params = {
            "trip_id": "T-1",
            "alert_id": alert.id,
            "crate_id": "JBG-KS-0001",
            "tracker_id": "TRK-0001",
            "name": "test-viewer",
        }
        yield h, client, params


def test_matrix_covers_every_endpoint(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    _, client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/v1") for m in ops}
    assert routes == {(m, p) for m, p, _, _ in ENDPOINTS}


def _call(client: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str]) -> int:
    if path.endswith("/stream"):
        with client.stream(method, path, headers=headers) as r:
            if r.status_code == 200:
                assert r.headers["content-type"].startswith("text/event-stream")
            return r.status_code
    return client.request(method, path, json=body, headers=headers).status_code


@pytest.mark.parametrize("who", [None, "unknown", "basic", *ROLES])
@pytest.mark.parametrize(
    ("method", "template", "needed", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_auth(
    api: tuple[Harness, httpx.Client, dict[str, str]],
    who: str | None,
    method: str,
    template: str,
    needed: str,
    body: Any,
) -> None:
    h, client, params = api
    if template == "/api/v1/tokens/{name}" and who == "admin":
        # Revoke a token made for this call, so the other cases keep theirs.
        h.ctx.tokens.create("to-revoke", "viewer", actor="test")
        params = {**params, "name": "to-revoke"}
    if template == "/api/v1/notifications/{name}" and method == "DELETE" and who == "admin":
        NotifyStore(h.ctx.db).put("to-remove", _CHANNEL, "test", time.time())
        params = {**params, "name": "to-remove"}
    if method == "POST" and "{alert_id}" in template:
        # A fresh alert for each call: resolving one twice would be a (correct) 409.
        fresh = h.ctx.alerts.apply(
            AlertEvent(
                action=AlertAction.RAISE,
                type=AlertType.GPS_JUMP,
                tracker_id=f"TRK-{who}-{template[-3:]}",
                ts=1_732_065_000.0,
            )
        )
        assert fresh is not None
        params = {**params, "alert_id": fresh.id}
    if template.endswith("/handover"):
        # A fresh trip for each call: a second handover of the same trip would be a (correct) 409.
        trip = trip_body(tracker_id=f"TRK-H-{who}", crate_id=f"CRATE-H-{who}")
        client.put(f"/api/v1/trips/T-H-{who}", json=trip, headers=h.headers("admin")).raise_for_status()
        params = {**params, "trip_id": f"T-H-{who}"}
    path = template.format(**params)
    if who is None:
        headers: dict[str, str] = {}
    elif who == "unknown":
        headers = {"Authorization": "Bearer kwl_not-a-real-token"}
    elif who == "basic":
        headers = {"Authorization": "Basic dGVzdDp0ZXN0"}
    else:
        headers = h.headers(who)
    if template == "/api/v1/tokens" and who == "admin":
        body = {"name": "made-by-matrix", "role": "viewer"}
    status = _call(client, method, path, body, headers)
    if who in (None, "unknown", "basic"):
        assert status == 401, status
    elif RANK[who] < RANK[needed]:
        assert status == 403, status
    else:
        assert status in (200, 201, 204), status


def test_401_carries_the_bearer_challenge(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    _, client, _ = api
    r = client.get("/api/v1/alerts")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"detail": "missing bearer token"}
    assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer nope"}).json() == {
        "detail": "unknown token"
    }


def test_open_endpoints(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    h, client, _ = api
    # /healthz answers without a token, from whatever health the service has: 200, then 503 with the reason.
    # (The real health of a running service: tests/test_health.py.)
    assert client.get("/healthz").status_code == 200
    h.ctx.health.is_ready = False  # type: ignore[attr-defined]
    try:
        r = client.get("/healthz")
        assert r.status_code == 503 and r.json()["reasons"] == ["not ready"]
    finally:
        h.ctx.health.is_ready = True  # type: ignore[attr-defined]
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").status_code == 200
