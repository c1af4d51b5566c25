"""PUT/GET/list of trips over HTTP (CONTRACT 2.2): stored shape, 422 reasons, audit, detection hook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_harness import Harness, running_api, trip_body


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Harness, httpx.Client]]:
    with running_api(tmp_path) as pair:
        yield pair


def test_put_returns_the_stored_trip(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    body = trip_body(depart="2024-11-20T07:00:00+07:00", arrive=1_732_071_600, district="Diwek")
    r = client.put("/api/v1/trips/T-1", json=body, headers=h.headers("admin"))
    assert r.status_code == 200, r.text
    trip = r.json()
    assert trip["trip_id"] == "T-1"
    assert trip["depart_after"] == "2024-11-20T00:00:00.000Z"  # RFC 3339 UTC whatever came in
    assert trip["arrive_by"] == "2024-11-20T03:00:00.000Z"
    assert trip["destination"]["open_after"] == "2024-11-26T23:00:00.000Z"
    assert trip["route"] == body["route"] and trip["stops"][0]["name"] == "Pos Polisi Diwek"
    assert trip["district"] == "Diwek"  # extra fields are kept
    assert trip["created_at"] == trip["updated_at"]
    # Stored, and handed to detection.
    assert client.get("/api/v1/trips/T-1", headers=h.headers("viewer")).json() == trip
    assert [t.trip_id for t in h.trip_changes] == ["T-1"]


def test_defaults_and_replace(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    body = trip_body()
    for key in ("corridor_m", "max_stop_min", "max_silence_min", "stops"):
        del body[key]
    first = client.put("/api/v1/trips/T-2", json=body, headers=h.headers("admin")).json()
    assert (first["corridor_m"], first["max_stop_min"], first["max_silence_min"]) == (200, 10, 15)
    assert first["stops"] == []
    body["corridor_m"] = 500
    second = client.put("/api/v1/trips/T-2", json=body, headers=h.headers("admin")).json()
    assert second["corridor_m"] == 500 and second["created_at"] == first["created_at"]
    assert second["updated_at"] >= first["updated_at"]
    actions = [(r.actor, r.action, r.subject) for r in h.ctx.audit.records() if r.subject.startswith("trip:")]
    assert actions == [("admin-env", "trip.create", "trip:T-2"), ("admin-env", "trip.update", "trip:T-2")]
    assert h.ctx.audit.records(subject="trip:T-2")[1].data["corridor_m"] == 500


def test_list_and_filters(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    for i, tracker in enumerate(["TRK-A", "TRK-B", "TRK-A"]):
        client.put(
            f"/api/v1/trips/T-{i}",
            json=trip_body(tracker_id=tracker, crate_id=f"C-{i}", depart=1_732_060_800 + i),
            headers=h.headers("admin"),
        ).raise_for_status()
    v = h.headers("viewer")
    assert [t["trip_id"] for t in client.get("/api/v1/trips", headers=v).json()["items"]] == [
        "T-0",
        "T-1",
        "T-2",
    ]
    r = client.get("/api/v1/trips", params={"tracker_id": "TRK-A"}, headers=v).json()
    assert [t["trip_id"] for t in r["items"]] == ["T-0", "T-2"]
    r = client.get("/api/v1/trips", params={"crate_id": "C-1"}, headers=v).json()
    assert [t["trip_id"] for t in r["items"]] == ["T-1"]
    r = client.get("/api/v1/trips", params={"limit": 1, "offset": 1}, headers=v).json()
    assert [t["trip_id"] for t in r["items"]] == ["T-1"]
    assert client.get("/api/v1/trips/none", headers=v).status_code == 404


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("one route point", {"route": [[-7.5, 112.2]]}, "route"),
    ("latitude out of range", {"route": [[-7.5, 112.2], [95.0, 112.2]]}, "out of range"),
    ("origin longitude", {"origin": {"name": "x", "lat": -7.5, "lon": 200}}, "origin"),
    (
        "arrive before depart",
        {"depart_after": 1_732_071_600, "arrive_by": 1_732_060_800},
        "arrive_by must come after depart_after",
    ),
    ("bad time", {"depart_after": "next tuesday"}, "RFC 3339"),
    ("naive time", {"depart_after": "2024-11-20T07:00:00"}, "UTC offset"),
    ("absurd time", {"arrive_by": 1e300}, "9999"),
    ("bad tracker id", {"tracker_id": "has space"}, "tracker_id"),
    ("negative corridor", {"corridor_m": -5}, "corridor_m"),
    ("trip_id differs", {"trip_id": "T-other"}, "differs"),
]


@pytest.mark.parametrize(("case", "change", "reason"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_invalid_bodies_get_422_with_reasons(
    api: tuple[Harness, httpx.Client], case: str, change: dict[str, Any], reason: str
) -> None:
    h, client = api
    body = {**trip_body(), **change}
    r = client.put("/api/v1/trips/T-9", json=body, headers=h.headers("admin"))
    assert r.status_code == 422, r.text
    assert reason in r.text
    assert client.get("/api/v1/trips/T-9", headers=h.headers("admin")).status_code == 404
    assert h.trip_changes == []


def test_missing_fields_and_bad_path(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    body = trip_body()
    del body["crate_id"], body["arrive_by"]
    r = client.put("/api/v1/trips/T-9", json=body, headers=h.headers("admin"))
    assert r.status_code == 422
    missing = {tuple(e["loc"]) for e in r.json()["detail"]}
    assert {("body", "crate_id"), ("body", "arrive_by")} <= missing
    assert (
        client.put("/api/v1/trips/bad id!", json=trip_body(), headers=h.headers("admin")).status_code == 422
    )
    assert (
        client.put(
            "/api/v1/trips/T-9",
            content=b"{not json",
            headers={**h.headers("admin"), "Content-Type": "application/json"},
        ).status_code
        == 422
    )


def test_detection_failure_does_not_lose_the_trip(tmp_path: Path) -> None:
    with running_api(tmp_path) as (h, client):

        def broken(trip: object) -> None:
            raise RuntimeError("engine down")

        h.ctx.on_trip_changed = broken
        r = client.put("/api/v1/trips/T-1", json=trip_body(), headers=h.headers("admin"))
        assert r.status_code == 200
        assert client.get("/api/v1/trips/T-1", headers=h.headers("viewer")).status_code == 200
