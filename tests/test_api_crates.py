"""Crates (status, track, list, summary), trackers, rejected payloads, tokens, me, config, audit."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alerts.model import AlertAction, AlertEvent, AlertType
from devices.decode import Rejection
from devices.reading import Reading
from ingest.readings import ReadingStore
from kawal.clock import EventClock
from tests.api_harness import Harness, running_api, trip_body

T0 = 1_732_060_800.0  # 2024-11-20T00:00:00Z, depart_after of the trips below


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Harness, httpx.Client]]:
    with running_api(tmp_path, crate_cache_s=0.0) as (h, client):
        clock = EventClock(T0 + 3600)  # "now" is an hour after departure
        h.ctx.clock = clock
        yield h, client


def _put(h: Harness, client: httpx.Client, trip_id: str, **kw: object) -> None:
    r = client.put(f"/api/v1/trips/{trip_id}", json=trip_body(**kw), headers=h.headers("admin"))  # type: ignore[arg-type]
    assert r.status_code == 200, r.text


def test_crate_status_and_track(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    _put(h, client, "T-1", tracker_id="TRK-1", crate_id="C-1", depart=T0, arrive=T0 + 10_800)
    v = h.headers("viewer")
    empty = client.get("/api/v1/crates/C-1", headers=v).json()
    assert empty == {
        **empty,
        "crate_id": "C-1",
        "tracker_id": "TRK-1",
        "trip_id": "T-1",
        "last_seen": None,
        "seal": None,
        "last_fix": None,
        "state": "in_transit",
    }
    h.store_readings(
        [
            Reading("TRK-1", T0 + 60, -7.5470, 112.2329, seq=1, acc=8, spd=30, hdg=180, bat=90, seal="closed"),
            Reading("TRK-1", T0 + 120, None, None, seq=2, bat=89, seal="closed"),  # no fix
            Reading("TRK-1", T0 + 180, 0.0, 0.0, seq=3),  # Null Island: not a position
            Reading("TRK-1", T0 + 240, -7.5600, 112.2310, seq=4, acc=6, spd=35, hdg=185, bat=88),
            Reading("TRK-1", T0 + 300, None, None, seq=5, seal="open"),
        ]
    )
    crate = client.get("/api/v1/crates/C-1", headers=v).json()
    assert crate["last_seen"] == "2024-11-20T00:05:00.000Z"
    assert crate["seal"] == "open" and crate["seal_at"] == "2024-11-20T00:05:00.000Z"
    assert crate["last_fix"] == {
        "ts": "2024-11-20T00:04:00.000Z",
        "lat": -7.56,
        "lon": 112.231,
        "acc": 6.0,
        "spd": 35.0,
        "hdg": 185.0,
        "bat": 88.0,
    }
    track = client.get("/api/v1/crates/C-1/track", headers=v).json()["items"]
    assert [p["ts"] for p in track] == ["2024-11-20T00:01:00.000Z", "2024-11-20T00:04:00.000Z"]
    # The contract's fix fields, plus the reading's seal state as an extension.
    assert set(track[0]) == {"ts", "lat", "lon", "acc", "spd", "hdg", "bat", "seal"}
    assert [p["seal"] for p in track] == ["closed", None]
    since = client.get("/api/v1/crates/C-1/track", params={"since": "2024-11-20T00:02:00Z"}, headers=v)
    assert [p["ts"] for p in since.json()["items"]] == ["2024-11-20T00:04:00.000Z"]
    until = client.get("/api/v1/crates/C-1/track", params={"until": T0 + 100}, headers=v)
    assert [p["ts"] for p in until.json()["items"]] == ["2024-11-20T00:01:00.000Z"]
    limited = client.get("/api/v1/crates/C-1/track", params={"limit": 1}, headers=v)
    assert len(limited.json()["items"]) == 1
    for params in ({"limit": 100_001}, {"limit": 0}, {"since": "soon"}):
        assert client.get("/api/v1/crates/C-1/track", params=params, headers=v).status_code == 422
    assert client.get("/api/v1/crates/C-1/track", params={"limit": 100_000}, headers=v).status_code == 200
    assert client.get("/api/v1/crates/C-404", headers=v).status_code == 404
    assert client.get("/api/v1/crates/C-404/track", headers=v).status_code == 404


def test_crate_list_states_and_summary(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    now = T0 + 3600
    _put(
        h,
        client,
        "T-store",
        tracker_id="TRK-S",
        crate_id="C-S",
        depart=now + 3600,
        arrive=now + 7200,
        district="Diwek",
    )
    _put(
        h,
        client,
        "T-move",
        tracker_id="TRK-M",
        crate_id="C-M",
        depart=T0,
        arrive=T0 + 10_800,
        district="Diwek",
    )
    _put(h, client, "T-done", tracker_id="TRK-D", crate_id="C-D", depart=T0, arrive=T0 + 10_800)
    _put(
        h,
        client,
        "T-bad",
        tracker_id="TRK-B",
        crate_id="C-B",
        depart=T0,
        arrive=T0 + 10_800,
        district="Ploso",
    )
    h.store_readings(
        [
            Reading("TRK-M", T0 + 600, -7.5600, 112.2310),
            Reading("TRK-D", T0 + 1200, -7.5851, 112.2301),  # inside PPK Diwek's zone
            Reading("TRK-B", T0 + 600, -7.5600, 112.2310, seal="open"),
        ]
    )
    h.ctx.alerts.apply(
        AlertEvent(
            action=AlertAction.RAISE,
            type=AlertType.SEAL_BREAK,
            tracker_id="TRK-B",
            trip_id="T-bad",
            crate_id="C-B",
            ts=T0 + 600,
        )
    )
    # A crate known only from the registry (bound by an admin, no trip yet).
    r = client.put("/api/v1/trackers/TRK-R", json={"crate_id": "C-R"}, headers=h.headers("admin"))
    assert r.status_code == 200 and r.json()["crate_id"] == "C-R"

    v = h.headers("viewer")
    listing = client.get("/api/v1/crates", headers=v).json()
    states = {c["crate_id"]: c["state"] for c in listing["items"]}
    assert states == {
        "C-S": "in_storage",
        "C-M": "in_transit",
        "C-D": "arrived",
        "C-B": "alerting",
        "C-R": "in_storage",
    }
    assert listing["total"] == 5
    by_id = {c["crate_id"]: c for c in listing["items"]}
    assert by_id["C-B"]["open_alerts"] == 1 and by_id["C-B"]["district"] == "Ploso"
    assert by_id["C-D"]["district"] == "PPK Diwek"  # no district field: the destination's name
    assert by_id["C-R"]["tracker_id"] == "TRK-R" and by_id["C-R"]["trip_id"] is None

    only = client.get("/api/v1/crates", params={"state": ["alerting", "arrived"]}, headers=v).json()
    assert sorted(c["crate_id"] for c in only["items"]) == ["C-B", "C-D"]
    diwek = client.get("/api/v1/crates", params={"district": "Diwek"}, headers=v).json()
    assert sorted(c["crate_id"] for c in diwek["items"]) == ["C-M", "C-S"]
    page = client.get("/api/v1/crates", params={"limit": 2, "offset": 1}, headers=v).json()
    assert [c["crate_id"] for c in page["items"]] == ["C-D", "C-M"] and page["total"] == 5
    assert client.get("/api/v1/crates", params={"state": "lost"}, headers=v).status_code == 422

    summary = client.get("/api/v1/summary", headers=v).json()
    assert summary["total"] == 5
    assert summary["by_state"] == {"in_storage": 2, "in_transit": 1, "arrived": 1, "alerting": 1}
    districts = {d["district"]: (d["total"], d["by_state"]["alerting"]) for d in summary["by_district"]}
    assert districts == {"Diwek": (2, 0), "PPK Diwek": (1, 0), "Ploso": (1, 1), None: (1, 0)}
    assert summary["open_alerts"] == 1 and summary["open_alerts_by_type"] == {"seal_break": 1}


def test_trackers(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    with h.ctx.db.write() as c:
        h.ctx.registry.ensure(c, ["TRK-9"], T0)  # type: ignore[attr-defined]
        h.ctx.registry.set_status(c, "TRK-9", "online", T0 + 5)  # type: ignore[attr-defined]
    v = h.headers("viewer")
    items = client.get("/api/v1/trackers", headers=v).json()["items"]
    assert items == [
        {
            "tracker_id": "TRK-9",
            "crate_id": None,
            "status": "online",
            "status_at": "2024-11-20T00:00:05.000Z",
            "created_at": "2024-11-20T00:00:00.000Z",
        }
    ]
    r = client.put("/api/v1/trackers/TRK-9", json={"crate_id": "C-9"}, headers=h.headers("admin"))
    assert r.status_code == 200 and r.json()["crate_id"] == "C-9"
    assert client.get("/api/v1/trackers/TRK-9", headers=v).json()["crate_id"] == "C-9"
    assert client.get("/api/v1/crates/C-9", headers=v).json()["tracker_id"] == "TRK-9"
    assert (
        client.put("/api/v1/trackers/TRK-9", json={"crate_id": None}, headers=h.headers("admin")).json()["crate_id"]
        is None
    )
    assert (
        client.put("/api/v1/trackers/TRK-9", json={"crate_id": "bad id"}, headers=h.headers("admin")).status_code == 422
    )
    assert client.get("/api/v1/trackers/none", headers=v).status_code == 404
    audit = [(r.action, r.data["crate_id"]) for r in h.ctx.audit.records(subject="tracker:TRK-9")]
    assert audit == [("tracker.assign", "C-9"), ("tracker.assign", None)]


def test_rejected_payloads(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    store = h.ctx.readings
    assert isinstance(store, ReadingStore)
    with h.ctx.db.write() as c:
        store.add_rejections(
            c,
            "kawal/v1/TRK-1/telemetry",
            [Rejection("lat_out_of_range", "lat 123 is outside [-90, 90]", b'{"lat": 123}')],
            T0,
        )
        store.add_rejections(c, "kawal/v1/TRK-2/telemetry", [Rejection("not_json", "bad", b"\xff\xfe\x00")], T0 + 1)
        store.add_rejections(c, "kawal/v1/TRK-3/telemetry", [Rejection("too_large", "big", b"x" * 9000)], T0 + 2)
    items = client.get("/api/v1/rejected", headers=h.headers("viewer")).json()["items"]
    assert [i["topic"] for i in items] == [
        "kawal/v1/TRK-3/telemetry",
        "kawal/v1/TRK-2/telemetry",
        "kawal/v1/TRK-1/telemetry",
    ]
    assert len(items[0]["payload"]) == 4096 and items[0]["payload_encoding"] == "text"
    assert items[1]["payload_encoding"] == "base64" and base64.b64decode(items[1]["payload"]) == b"\xff\xfe\x00"
    assert items[2] == {
        "received_at": "2024-11-20T00:00:00.000Z",
        "topic": "kawal/v1/TRK-1/telemetry",
        "reason": "lat_out_of_range",
        "detail": "lat 123 is outside [-90, 90]",
        "payload": '{"lat": 123}',
        "payload_encoding": "text",
    }
    one = client.get("/api/v1/rejected", params={"limit": 1}, headers=h.headers("viewer")).json()["items"]
    assert [i["reason"] for i in one] == ["too_large"]
    assert client.get("/api/v1/rejected", params={"limit": 1001}, headers=h.headers("viewer")).status_code == 422


def test_tokens_me_config_and_audit(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    r = client.post("/api/v1/tokens", json={"name": "ops-sari", "role": "operator"}, headers=h.headers("admin"))
    assert r.status_code == 201
    body = r.json()
    assert (body["name"], body["role"]) == ("ops-sari", "operator") and body["token"].startswith("kwl_")
    token = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/v1/me", headers=token).json() == {"name": "ops-sari", "role": "operator"}
    assert client.get("/api/v1/me", headers=h.headers("admin")).json() == {
        "name": "admin-env",
        "role": "admin",
    }
    # Only the hash is stored.
    rows = h.ctx.db.conn().execute("SELECT * FROM tokens WHERE name = 'ops-sari'").fetchall()
    assert len(rows) == 1 and body["token"] not in [str(v) for v in tuple(rows[0])]
    assert (
        client.post(
            "/api/v1/tokens", json={"name": "ops-sari", "role": "viewer"}, headers=h.headers("admin")
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/tokens", json={"name": "admin-env", "role": "viewer"}, headers=h.headers("admin")
        ).status_code
        == 409
    )
    for bad in ({"name": "x"}, {"name": "has space", "role": "viewer"}, {"name": "x", "role": "root"}):
        assert client.post("/api/v1/tokens", json=bad, headers=h.headers("admin")).status_code == 422
    # Revocation takes effect at once.
    assert client.delete("/api/v1/tokens/ops-sari", headers=h.headers("admin")).status_code == 204
    assert client.get("/api/v1/me", headers=token).status_code == 401
    assert client.delete("/api/v1/tokens/ops-sari", headers=h.headers("admin")).status_code == 404

    cfg = client.get("/api/v1/config", headers=h.headers("viewer")).json()
    assert cfg["tile_url"] == "https://tiles.example/{z}/{x}/{y}.png" and cfg["clock"] == "wall"

    audit = client.get("/api/v1/audit", params={"subject": "token:ops-sari"}, headers=h.headers("viewer")).json()
    assert [(i["actor"], i["action"]) for i in audit["items"]] == [
        ("admin-env", "token.create"),
        ("admin-env", "token.revoke"),
    ]
    first = audit["items"][0]
    later = client.get("/api/v1/audit", params={"after": first["seq"]}, headers=h.headers("viewer")).json()
    assert later["items"][0]["prev_hash"] == first["hash"]


def test_health_and_metrics_need_no_token(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    assert client.get("/healthz").json() == {"status": "ok"}
    h.ctx.health.is_ready = False  # type: ignore[attr-defined]
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json() == {"status": "starting", "reason": "not ready", "reasons": ["not ready"]}
    m = client.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    assert "kawal_readings_stored_total" in m.text and "kawal_http_requests_total" in m.text


def test_crate_cache_is_shared(tmp_path: Path) -> None:
    with running_api(tmp_path, crate_cache_s=60.0) as (h, client):
        _put(h, client, "T-1", tracker_id="TRK-1", crate_id="C-1")
        v = h.headers("viewer")
        assert client.get("/api/v1/crates", headers=v).json()["total"] == 1
        # A trip written behind the API's back (e.g. by `kawal trips import`) shows once the cache expires...
        from kawal.trips import TripIn

        h.ctx.trips.put("T-2", TripIn.model_validate(trip_body(tracker_id="TRK-2", crate_id="C-2")), now=time.time())
        assert client.get("/api/v1/crates", headers=v).json()["total"] == 1
        # ...while a change through the API shows at once.
        _put(h, client, "T-3", tracker_id="TRK-3", crate_id="C-3")
        assert client.get("/api/v1/crates", headers=v).json()["total"] == 3
