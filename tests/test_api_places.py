"""Places in the crate views (CONTRACT 2.4 extensions) and the boundaries for the dashboard's map."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alerts.model import AlertAction, AlertEvent, AlertType
from devices.reading import Reading
from kawal.clock import EventClock
from tests.api_harness import Harness, running_api, trip_body

T0 = 1_732_060_800.0
PERAK = (-7.606658, 112.161201)  # desa Jantiganggong, kecamatan Perak
DIWEK = (-7.585, 112.23)  # desa Balongbesuk, kecamatan Diwek


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Harness, httpx.Client]]:
    with running_api(tmp_path, crate_cache_s=0.0) as (h, client):
        h.ctx.clock = EventClock(T0 + 3600)
        yield h, client


def test_crates_carry_the_place_of_their_latest_fix(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    for n in (1, 2, 3):
        body = trip_body(tracker_id=f"TRK-{n}", crate_id=f"C-{n}", depart=T0, arrive=T0 + 10_800)
        assert client.put(f"/api/v1/trips/T-{n}", json=body, headers=h.headers("admin")).status_code == 200
    h.store_readings(
        [
            Reading("TRK-1", T0 + 60, *DIWEK, seq=1),
            Reading("TRK-1", T0 + 120, *PERAK, seq=2),  # it moved on to Perak
            Reading("TRK-2", T0 + 60, *DIWEK, seq=1),
        ]
    )
    h.ctx.alerts.apply(
        AlertEvent(
            action=AlertAction.RAISE,
            type=AlertType.SEAL_BREAK,
            tracker_id="TRK-2",
            ts=T0 + 60,
            lat=DIWEK[0],
            lon=DIWEK[1],
        )
    )
    v = h.headers("viewer")
    one = client.get("/api/v1/crates/C-1", headers=v).json()
    assert one["place"] == {
        "kecamatan": "Perak",
        "desa": "Jantiganggong",
        "kecamatan_code": "35.17.01",
        "desa_code": "35.17.01.2001",
    }
    assert client.get("/api/v1/crates/C-3", headers=v).json()["place"] is None  # no fix yet
    listed = client.get("/api/v1/crates", headers=v).json()["items"]
    assert [c["place"]["desa"] if c["place"] else None for c in listed] == ["Jantiganggong", "Balongbesuk", None]
    only = client.get("/api/v1/crates", params={"kecamatan": "diwek"}, headers=v).json()
    assert [c["crate_id"] for c in only["items"]] == ["C-2"] and only["total"] == 1

    rows = {r["kecamatan"]: r for r in client.get("/api/v1/summary", headers=v).json()["by_kecamatan"]}
    assert len(rows) == 22  # the 21 kecamatan of Jombang, then crates without a place
    assert rows["Perak"]["crates"] == 1 and rows["Perak"]["code"] == "35.17.01" and rows["Perak"]["open_alerts"] == 0
    assert rows["Diwek"]["crates"] == 1 and rows["Diwek"]["by_state"]["alerting"] == 1
    assert rows["Diwek"]["open_alerts"] == 1
    assert rows[None]["crates"] == 1 and rows["Gudo"] == {**rows["Gudo"], "crates": 0, "open_alerts": 0}


def test_boundaries_for_the_map(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    assert client.get("/api/v1/boundaries").status_code == 401
    r = client.get("/api/v1/boundaries", headers={**h.headers("viewer"), "Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    data = r.json()
    assert data["type"] == "FeatureCollection" and "Cahya DSN" in data["attribution"]
    levels = [f["properties"]["level"] for f in data["features"]]
    assert levels.count("kecamatan") == 21 and levels.count("desa") == 306
    assert len(r.content) < 500_000
    with client.stream("GET", "/api/v1/boundaries", headers={**h.headers("viewer"), "Accept-Encoding": "gzip"}) as z:
        assert z.headers["content-encoding"] == "gzip"
        body = b"".join(z.iter_raw())
    assert len(body) < len(r.content) / 3 and json.loads(gzip.decompress(body)) == data
    again = client.get("/api/v1/boundaries", headers={**h.headers("viewer"), "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
