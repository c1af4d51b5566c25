"""GET /api/v1/alerts with every filter, one alert, ack and resolve over HTTP (CONTRACT 2.3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alerts.model import AlertAction, AlertEvent, AlertType
from alerts.store import AlertStore
from api.app import create_app
from kawal.timeutil import parse_time
from tests.api_harness import ALERT_FIELDS, ApiServer, Harness, make_harness


class StepClock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        self.t += 10.0
        return self.t


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Harness, httpx.Client, dict[str, str]]]:
    """Five alerts raised 10 s apart (raised_at 1732065010 ... 1732065050), one acknowledged."""
    h = make_harness(tmp_path)
    c = h.ctx
    h.ctx.alerts = AlertStore(c.db, c.alerts.audit, c.broadcaster, c.metrics, now=StepClock(1_732_065_000.0))
    h.app = create_app(h.ctx)
    ids: dict[str, str] = {}
    for name, kind, tracker, trip, crate in [
        ("a", AlertType.SEAL_BREAK, "TRK-1", "T-1", "C-1"),
        ("b", AlertType.ROUTE_DEVIATION, "TRK-1", "T-1", "C-1"),
        ("c", AlertType.LOW_BATTERY, "TRK-2", "T-2", "C-2"),
        ("d", AlertType.SIGNAL_LOST, "TRK-3", None, None),
        ("e", AlertType.GPS_JUMP, "TRK-2", "T-2", "C-2"),
    ]:
        a = h.ctx.alerts.apply(
            AlertEvent(
                action=AlertAction.RAISE,
                type=kind,
                tracker_id=tracker,
                trip_id=trip,
                crate_id=crate,
                ts=1_732_064_000.0,
                lat=-7.56,
                lon=112.23,
            )
        )
        assert a is not None
        ids[name] = a.id
    h.ctx.alerts.ack(ids["c"], "ops-budi", "battery swap planned")
    with ApiServer(h.app) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield h, client, ids


def _ids(client: httpx.Client, h: Harness, **params: object) -> list[str]:
    r = client.get("/api/v1/alerts", params=params, headers=h.headers("viewer"))  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["items"]]


def test_list_newest_first_every_status(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    h, client, ids = api
    assert _ids(client, h) == [ids[k] for k in "edcba"]
    item = client.get("/api/v1/alerts", headers=h.headers("viewer")).json()["items"][-1]
    assert set(item) >= ALERT_FIELDS
    assert item["raised_at"] == "2024-11-20T01:10:10.000Z" and item["ts"] == "2024-11-20T00:53:20.000Z"
    d = client.get(f"/api/v1/alerts/{ids['d']}", headers=h.headers("viewer")).json()
    assert d["trip_id"] is None  # bound to no trip


def test_filters(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    h, client, ids = api
    assert _ids(client, h, trip_id="T-1") == [ids["b"], ids["a"]]
    assert _ids(client, h, crate_id="C-2") == [ids["e"], ids["c"]]
    assert _ids(client, h, tracker_id="TRK-3") == [ids["d"]]
    assert _ids(client, h, type="seal_break") == [ids["a"]]
    assert _ids(client, h, type=["seal_break", "gps_jump"]) == [ids["e"], ids["a"]]
    assert _ids(client, h, status="acknowledged") == [ids["c"]]
    assert _ids(client, h, status=["open", "acknowledged"]) == [ids[k] for k in "edcba"]
    assert _ids(client, h, status="resolved") == []
    assert _ids(client, h, since="2024-11-20T01:10:30Z") == [ids[k] for k in "edc"]
    assert _ids(client, h, since="2024-11-20T08:10:30+07:00") == [ids[k] for k in "edc"]
    assert _ids(client, h, since=str(parse_time("2024-11-20T01:10:40Z"))) == [ids["e"], ids["d"]]
    assert _ids(client, h, since=1_732_065_040, until=1_732_065_050) == [ids["d"]]
    assert _ids(client, h, limit=2) == [ids["e"], ids["d"]]
    assert _ids(client, h, tracker_id="TRK-2", type="gps_jump", status="open") == [ids["e"]]
    assert _ids(client, h, trip_id="nope") == []


def test_bad_filters_are_422(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    h, client, _ = api
    v = h.headers("viewer")
    for params in (
        {"limit": 1001},
        {"limit": 0},
        {"type": "meteor"},
        {"status": "closed"},
        {"since": "yesterday"},
        {"since": "nan"},
    ):
        r = client.get("/api/v1/alerts", params=params, headers=v)
        assert r.status_code == 422, (params, r.text)
    assert client.get("/api/v1/alerts", params={"limit": 1000}, headers=v).status_code == 200


def test_default_limit_is_100(tmp_path: Path) -> None:
    h = make_harness(tmp_path)
    for i in range(105):
        h.ctx.alerts.apply(
            AlertEvent(
                action=AlertAction.RAISE, type=AlertType.LOW_BATTERY, tracker_id=f"T{i}", ts=1_732_064_000.0
            )
        )
    with ApiServer(h.app) as server, httpx.Client(base_url=server.base_url) as client:
        assert len(client.get("/api/v1/alerts", headers=h.headers("viewer")).json()["items"]) == 100


def test_ack_and_resolve_record_who_and_when(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    h, client, ids = api
    op = h.headers("operator")
    r = client.post(f"/api/v1/alerts/{ids['a']}/ack", json={"note": "escort on the way"}, headers=op)
    assert r.status_code == 200, r.text
    acked = r.json()
    assert acked["status"] == "acknowledged" and acked["id"] == ids["a"]
    last = acked["history"][-1]
    assert (last["actor"], last["action"], last["note"]) == ("test-operator", "ack", "escort on the way")
    assert last["at"].endswith("Z") and acked["updated_at"] == last["at"]

    r = client.post(
        f"/api/v1/alerts/{ids['a']}/resolve",
        json={"note": "seal replaced, witnessed"},
        headers=h.headers("admin"),
    )
    assert r.status_code == 200
    assert r.json()["status"] == "resolved" and r.json()["history"][-1]["actor"] == "admin-env"
    assert client.get(f"/api/v1/alerts/{ids['a']}", headers=h.headers("viewer")).json() == r.json()
    # Acting on it again conflicts; unknown ids are 404; the body may be left out.
    assert client.post(f"/api/v1/alerts/{ids['a']}/ack", json={"note": "x"}, headers=op).status_code == 409
    assert client.post(f"/api/v1/alerts/{ids['a']}/resolve", json={}, headers=op).status_code == 409
    assert client.post("/api/v1/alerts/nope/ack", json={"note": "x"}, headers=op).status_code == 404
    assert client.get("/api/v1/alerts/nope", headers=op).status_code == 404
    assert client.post(f"/api/v1/alerts/{ids['b']}/ack", headers=op).status_code == 200
    assert client.post(f"/api/v1/alerts/{ids['e']}/ack", json={"note": 5}, headers=op).status_code == 422
    audit = [(r.actor, r.action) for r in h.ctx.audit.records(subject=f"alert:{ids['a']}")]
    assert audit == [("kawal", "alert.raise"), ("test-operator", "alert.ack"), ("admin-env", "alert.resolve")]


def test_alert_metrics(api: tuple[Harness, httpx.Client, dict[str, str]]) -> None:
    h, client, ids = api
    client.get("/api/v1/alerts", headers=h.headers("viewer"))
    client.get(f"/api/v1/alerts/{ids['a']}", headers=h.headers("viewer"))
    text = client.get("/metrics").text
    assert 'kawal_alerts_raised_total{type="seal_break"} 1.0' in text
    assert 'kawal_alerts_open{type="low_battery"} 1.0' in text
    assert 'kawal_alerts_changed_total{status="acknowledged",type="low_battery"} 1.0' in text
    assert (
        'kawal_http_requests_total{method="GET",route="/api/v1/alerts/{alert_id}",status="200"} 1.0' in text
    )
    assert 'kawal_http_request_seconds_count{method="GET",route="/api/v1/alerts"}' in text
