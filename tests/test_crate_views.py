"""The crate views read the materialised tracker state, and answer exactly what the track says.

A reference computes every crate the way the views did before the state existed (every trip parsed,
three searches of the readings per crate); the list, the filters, the summary and each crate must equal
it on a random fleet with several trips per crate, registry-only crates, odd `district` values, open,
acknowledged and resolved alerts, and readings stored out of order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.model import AlertAction, AlertEvent, AlertType
from devices.reading import Reading
from kawal.clock import EventClock
from kawal.geodesy import distance_m
from kawal.timeutil import rfc3339
from kawal.trips import Trip, TripIn, bound_trip
from storage import Database
from tests.api_harness import Harness, make_harness, trip_body

T0 = 1_732_060_800.0
NOW = T0 + 3600.0
DEST = (-7.5850, 112.2300)  # PPK Diwek, trip_body's destination
STATES = ("in_storage", "in_transit", "arrived", "alerting")


@pytest.fixture
def fleet(tmp_path: Path, database: Database) -> Iterator[tuple[Harness, TestClient]]:
    h = make_harness(tmp_path, database, crate_cache_s=0.0)
    h.ctx.clock = EventClock(NOW)
    with TestClient(h.app) as client:
        yield h, client


# -- the reference: the views as they were computed before (api/crates.py at the previous commit) --------


def reference_crate(h: Harness, crate_id: str, trips: list[Trip], reg_tracker: str | None) -> dict[str, Any]:
    ctx = h.ctx
    now = ctx.clock.now()
    trip = bound_trip(trips, now)
    tracker = trip.tracker_id if trip is not None else reg_tracker
    latest = ctx.readings.latest(tracker) if tracker else None
    fix = ctx.readings.latest_fix(tracker) if tracker else None
    seal = ctx.readings.last_seal(tracker) if tracker else None
    n_open = ctx.alerts.open_counts().get(tracker, 0) if tracker else 0
    if n_open:
        state = "alerting"
    elif trip is None or now < trip.depart_after:
        state = "in_storage"
    elif (
        fix is not None
        and fix.lat is not None
        and fix.lon is not None
        and fix.ts >= trip.depart_after
        and distance_m(fix.lat, fix.lon, trip.destination.lat, trip.destination.lon) <= trip.destination.radius_m
    ):
        state = "arrived"
    else:
        state = "in_transit"
    district = None
    if trip is not None:
        d = (trip.model_extra or {}).get("district")
        district = str(d) if d not in (None, "") else trip.destination.name
    return {
        "crate_id": crate_id,
        "tracker_id": tracker,
        "trip_id": trip.trip_id if trip else None,
        "last_seen": rfc3339(latest.ts) if latest else None,
        "seal": seal[0] if seal else None,
        "last_fix": None
        if fix is None
        else {
            "ts": rfc3339(fix.ts),
            "lat": fix.lat,
            "lon": fix.lon,
            "acc": fix.acc,
            "spd": fix.spd,
            "hdg": fix.hdg,
            "bat": fix.bat,
        },
        "seal_at": rfc3339(seal[1]) if seal else None,
        "state": state,
        "district": district,
        "destination": trip.destination.name if trip else None,
        "open_alerts": n_open,
        "place": ctx.places.lookup(fix.lat, fix.lon) if fix is not None else None,
        "seq_missing": _seq_missing(h, tracker),
    }


def _seq_missing(h: Harness, tracker: str | None) -> int | None:
    """The count ingest/seqgaps.py saved for the tracker (its own tests check the counting)."""
    if tracker is None:
        return None
    row = h.ctx.db.conn().execute("SELECT seq_missing FROM trackers WHERE tracker_id = ?", (tracker,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def reference_fleet(h: Harness) -> list[dict[str, Any]]:
    by_crate: dict[str, list[Trip]] = {}
    for t in h.ctx.trips.list():
        by_crate.setdefault(t.crate_id, []).append(t)
    registry: dict[str, str] = {}
    for row in h.ctx.registry.list():
        if row["crate_id"] and row["crate_id"] not in registry:
            registry[row["crate_id"]] = row["tracker_id"]
    ids = sorted(set(by_crate) | set(registry))
    return [reference_crate(h, c, by_crate.get(c, []), registry.get(c)) for c in ids]


def reference_summary(h: Harness, crates: list[dict[str, Any]]) -> dict[str, Any]:
    by_state = dict.fromkeys(STATES, 0)
    districts: dict[str | None, dict[str, int]] = {}
    for c in crates:
        by_state[c["state"]] += 1
        districts.setdefault(c["district"], dict.fromkeys(STATES, 0))[c["state"]] += 1
    open_by_type = h.ctx.alerts.open_by_type()
    return {
        "total": len(crates),
        "by_state": by_state,
        "by_district": [
            {"district": name, "total": sum(n.values()), "by_state": n}
            for name, n in sorted(districts.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ],
        "open_alerts": sum(open_by_type.values()),
        "open_alerts_by_type": open_by_type,
        "by_kecamatan": reference_kecamatan(h, crates),
        "at": rfc3339(h.ctx.clock.now()),
    }


def reference_kecamatan(h: Harness, crates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every kecamatan by code with its crates (by their place) and open alerts, then crates with no place."""
    unresolved = h.ctx.alerts.list(statuses=["open", "acknowledged"], limit=100_000)
    rows = []
    for k in h.ctx.places.kecamatan:
        here = [c for c in crates if c["place"] and c["place"]["kecamatan"] == k.name]
        by_state = dict.fromkeys(STATES, 0)
        for c in here:
            by_state[c["state"]] += 1
        n_open = sum(1 for a in unresolved if a.place and a.place["kecamatan"] == k.name)
        rows.append(
            {"kecamatan": k.name, "code": k.code, "crates": len(here), "by_state": by_state, "open_alerts": n_open}
        )
    nowhere = [c for c in crates if c["place"] is None]
    if nowhere:
        by_state = dict.fromkeys(STATES, 0)
        for c in nowhere:
            by_state[c["state"]] += 1
        rows.append({"kecamatan": None, "code": None, "crates": len(nowhere), "by_state": by_state, "open_alerts": 0})
    return rows


# -- the fleet -------------------------------------------------------------------------------------------

DISTRICTS: list[Any] = ["Diwek", "Ploso", "", 5, 2.5, True, False, None, {"a": 1}, ["x", 2], "Désa Ñ"]


def put_trip(h: Harness, trip_id: str, **kw: Any) -> None:
    h.ctx.trips.put(trip_id, TripIn.model_validate(trip_body(**kw)), now=time.time())


def build(h: Harness, rng: random.Random, n: int = 40) -> None:
    for i in range(n):
        crate = f"C-{i:03d}"
        for j in range(rng.choice([1, 1, 2, 3])):
            extra: dict[str, Any] = {}
            if rng.random() < 0.8:
                extra["district"] = rng.choice(DISTRICTS)
            depart = rng.choice([T0 - 7200, T0, NOW - 60, NOW + 0.0004, NOW + 3600]) + j
            tracker = f"TRK-{i:03d}" if rng.random() < 0.8 else f"TRK-{i:03d}-{j}"
            put_trip(
                h, f"T-{i:03d}-{j}", tracker_id=tracker, crate_id=crate, depart=depart, arrive=depart + 7200, **extra
            )
    for i in range(8):  # crates bound only in the registry, one with two trackers; one with trips too
        h.ctx.registry.assign(f"REG-{i}", f"R-{i // 2}" if i < 6 else "C-001", now=T0)
    readings: list[Reading] = []
    trackers = [r["tracker_id"] for r in h.ctx.registry.list()] + [t.tracker_id for t in h.ctx.trips.list()]
    for k in range(600):
        tracker = rng.choice(trackers)
        near = rng.random() < 0.3
        kind = rng.random()
        lat, lon = (
            (None, None)
            if kind < 0.15
            else (0.0, 0.0)
            if kind < 0.2
            else (DEST[0] + rng.uniform(-0.001, 0.001), DEST[1])
            if near
            else (rng.uniform(-7.6, -7.5), 112.2)
        )
        readings.append(
            Reading(
                tracker,
                NOW - rng.randint(0, 9000),
                lat,
                lon,
                seq=rng.choice([None, k]),
                acc=rng.choice([None, 6.0]),
                spd=rng.choice([None, 30.0]),
                hdg=rng.choice([None, 180.0]),
                bat=rng.choice([None, rng.uniform(1, 100)]),
                seal=rng.choice([None, None, "closed", "open", "tampered"]),
            )
        )
    for i in range(0, len(readings), 50):  # batches out of order, with redeliveries
        h.store_readings(readings[i : i + 50] + readings[max(0, i - 20) : i])
    for i, tracker in enumerate(rng.sample(sorted(set(trackers)), 12)):
        alert = h.ctx.alerts.apply(
            AlertEvent(
                action=AlertAction.RAISE,
                type=rng.choice([AlertType.SEAL_BREAK, AlertType.LOW_BATTERY]),
                tracker_id=tracker,
                ts=NOW - 100,
            )
        )
        assert alert is not None
        if i % 3 == 1:
            h.ctx.alerts.ack(alert.id, "ops", "seen")  # still unresolved
        elif i % 3 == 2:
            h.ctx.alerts.resolve(alert.id, "ops", "done")


def check(h: Harness, client: TestClient) -> list[dict[str, Any]]:
    v = h.headers("viewer")
    expected = reference_fleet(h)
    listing = client.get("/api/v1/crates", headers=v).json()
    assert listing == {"items": expected, "total": len(expected)}
    assert client.get("/api/v1/summary", headers=v).json() == reference_summary(h, expected)
    for c in expected:
        assert client.get(f"/api/v1/crates/{c['crate_id']}", headers=v).json() == c
    for district in {c["district"] for c in expected if c["district"] is not None}:
        got = client.get("/api/v1/crates", params={"district": district}, headers=v).json()
        assert got["items"] == [c for c in expected if c["district"] == district]
    for states in (["alerting"], ["in_transit", "arrived"], ["in_storage"]):
        got = client.get("/api/v1/crates", params={"state": states, "limit": 7, "offset": 2}, headers=v).json()
        wanted = [c for c in expected if c["state"] in states]
        assert got == {"items": wanted[2:9], "total": len(wanted)}
    return expected


def test_views_equal_the_reference_on_a_random_fleet(fleet: tuple[Harness, TestClient]) -> None:
    h, client = fleet
    build(h, random.Random(11))
    expected = check(h, client)
    # The fleet covers what it should.
    assert {c["state"] for c in expected} == set(STATES)
    assert {"5", "2.5", "True", "False", "{'a': 1}", "['x', 2]", "PPK Diwek", "Désa Ñ"} <= {
        c["district"] for c in expected
    }
    assert any(c["trip_id"] is None and c["tracker_id"] for c in expected)
    assert client.get("/api/v1/crates/none", headers=h.headers("viewer")).status_code == 404


def test_views_follow_changes(fleet: tuple[Harness, TestClient]) -> None:
    h, client = fleet
    build(h, random.Random(12), n=15)
    put_trip(h, "T-X", tracker_id="TRK-X", crate_id="C-X", depart=T0, arrive=T0 + 7200, district="Diwek")
    h.store_readings([Reading("TRK-X", NOW - 600, -7.56, 112.231, seq=1, seal="closed")])
    before = {c["crate_id"]: c for c in check(h, client)}
    assert (before["C-X"]["state"], before["C-X"]["district"], before["C-X"]["seal"]) == (
        "in_transit",
        "Diwek",
        "closed",
    )
    # The crate arrives (only its readings change)...
    h.store_readings([Reading("TRK-X", NOW - 60, DEST[0], DEST[1], seq=2, seal="open")])
    arrived = {c["crate_id"]: c for c in check(h, client)}["C-X"]
    assert (arrived["state"], arrived["district"], arrived["seal"]) == ("arrived", "Diwek", "open")
    # ...its trip is moved to another district, an alert is resolved, a crate is bound.
    put_trip(h, "T-X", tracker_id="TRK-X", crate_id="C-X", depart=T0, arrive=T0 + 7200, district="Mojoagung")
    for a in h.ctx.alerts.list(statuses=["open"])[:2]:
        h.ctx.alerts.resolve(a.id, "ops", "done")
    h.ctx.registry.assign("REG-NEW", "R-NEW", now=T0)
    after = {c["crate_id"]: c for c in check(h, client)}
    assert (after["C-X"]["state"], after["C-X"]["district"], after["C-X"]["seal"]) == ("arrived", "Mojoagung", "open")
    assert after["R-NEW"]["tracker_id"] == "REG-NEW" and "R-NEW" not in before
    assert sum(c["open_alerts"] for c in after.values()) < sum(c["open_alerts"] for c in before.values())


def test_departure_is_the_trips_own_millisecond_time(fleet: tuple[Harness, TestClient]) -> None:
    """A trip keeps depart_after to the millisecond, like every time it returns: 0.4 ms after NOW is NOW."""
    h, client = fleet
    put_trip(h, "T-1", tracker_id="TRK-1", crate_id="C-1", depart=NOW + 0.0004, arrive=NOW + 7200)
    assert client.get("/api/v1/crates/C-1", headers=h.headers("viewer")).json()["state"] == "in_transit"
    check(h, client)


def test_time_alone_changes_states(fleet: tuple[Harness, TestClient]) -> None:
    """Nothing stored changes, yet a crate departs when its time comes and alerts when one is raised."""
    h, client = fleet
    put_trip(h, "T-1", tracker_id="TRK-1", crate_id="C-1", depart=NOW + 60, arrive=NOW + 7200)
    put_trip(h, "T-2", tracker_id="TRK-2", crate_id="C-2", depart=T0, arrive=T0 + 7200)
    h.store_readings([Reading("TRK-1", NOW - 10, -7.546, 112.233), Reading("TRK-2", NOW - 10, -7.56, 112.231)])
    v = h.headers("viewer")

    def states() -> dict[str, str]:
        return {c["crate_id"]: c["state"] for c in client.get("/api/v1/crates", headers=v).json()["items"]}

    assert states() == {"C-1": "in_storage", "C-2": "in_transit"}
    assert isinstance(h.ctx.clock, EventClock)
    h.ctx.clock.observe(NOW + 61)
    assert states() == {"C-1": "in_transit", "C-2": "in_transit"}
    h.ctx.alerts.apply(AlertEvent(action=AlertAction.RAISE, type=AlertType.SIGNAL_LOST, tracker_id="TRK-2", ts=NOW))
    assert states() == {"C-1": "in_transit", "C-2": "alerting"}
    check(h, client)
