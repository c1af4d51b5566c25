"""Handovers (CONTRACT 2.6) on both backends: the record, handover_mismatch, 409, the audit cross-check."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.model import AlertType
from api.custody import HandoverConflict, HandoverIn, verify_handovers
from api.routers.custody import custody_store
from devices.reading import Reading
from storage import Database
from tests.api_harness import Harness, make_harness, trip_body
from tests.backends import Backend

DEPART = 1_732_060_800.0


class FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def observe(self, ts: float) -> None:
        return None


# 2024-11-20T00:00:00Z
DEST = (-7.5850, 112.2300)  # PPK Diwek, radius 150 m
SEALS = ["KPU-3517-0001234", "KPU-3517-0001235"]


@pytest.fixture
def api(tmp_path: Path, database: Database) -> Iterator[tuple[Harness, TestClient]]:
    h = make_harness(tmp_path, db=database)
    with TestClient(h.app) as client:
        yield h, client


def _trip(h: Harness, client: TestClient, trip_id: str, tracker: str, crate: str, **extra: Any) -> None:
    body = trip_body(tracker_id=tracker, crate_id=crate, depart=DEPART, arrive=DEPART + 3 * 3600, **extra)
    r = client.put(f"/api/v1/trips/{trip_id}", json=body, headers=h.headers("admin"))
    assert r.status_code == 200, r.text


def _fix(h: Harness, tracker: str, ts: float, lat: float, lon: float) -> None:
    h.store_readings([Reading(tracker_id=tracker, ts=ts, seq=int(ts - DEPART), lat=lat, lon=lon, seal="closed")])


def _handover(h: Harness, client: TestClient, trip_id: str, seals: list[str], at: float) -> Any:
    body = {"receiver": {"name": "Siti Aminah", "role": "PPK"}, "seals": seals, "at": at, "note": "ok"}
    return client.post(f"/api/v1/trips/{trip_id}/handover", json=body, headers=h.headers("operator"))


def _mismatches(h: Harness, tracker: str) -> list[Any]:
    return h.ctx.alerts.list(tracker_id=tracker, types=[AlertType.HANDOVER_MISMATCH])


def test_clean_handover_is_recorded_audited_and_ends_the_trip(api: tuple[Harness, TestClient]) -> None:
    h, client = api
    _trip(h, client, "T-1", "TRK-1", "C-1", seals=SEALS)
    _fix(h, "TRK-1", DEPART + 3000, *DEST)
    _fix(h, "TRK-1", DEPART + 9000, -7.60, 112.25)  # after `at`: not the handover's position
    r = _handover(h, client, "T-1", [s.lower() for s in reversed(SEALS)], DEPART + 3600)
    assert r.status_code == 201, r.text
    ho = r.json()
    assert ho["trip_id"] == "T-1" and ho["crate_id"] == "C-1"
    assert ho["receiver"] == {"name": "Siti Aminah", "role": "PPK"}
    assert ho["recorded_by"] == "test-operator"
    assert ho["at"] == "2024-11-20T01:00:00.000Z"
    assert ho["position"] == {"ts": "2024-11-20T00:50:00.000Z", "lat": DEST[0], "lon": DEST[1]}
    assert ho["in_destination"] is True and ho["seals_match"] is True and ho["alert_id"] is None
    assert _mismatches(h, "TRK-1") == []
    # The audit record holds the handover under the hash the receipt prints.
    rec = next(r for r in h.ctx.audit.records(subject="trip:T-1") if r.action == "custody.handover")
    assert rec.hash == ho["audit_hash"] and rec.data["id"] == ho["id"] and rec.actor == "test-operator"
    assert h.ctx.audit.verify().ok and verify_handovers(h.ctx.db) is None
    # The trip ended: stored, and handed to detection.
    trip = client.get("/api/v1/trips/T-1", headers=h.headers("viewer")).json()
    assert trip["handover_at"] == "2024-11-20T01:00:00.000Z"
    assert h.trip_changes[-1].handover_at == DEPART + 3600
    # The crate is in storage at its destination now, though its latest fix is far away.
    h.ctx.clock = FixedClock(DEPART + 9500)
    crate = client.get("/api/v1/crates/C-1", headers=h.headers("viewer")).json()
    assert crate["state"] == "arrived"
    # Replacing the plan keeps the handover.
    _trip(h, client, "T-1", "TRK-1", "C-1", seals=SEALS, corridor_m=300)
    assert client.get("/api/v1/trips/T-1", headers=h.headers("viewer")).json()["handover_at"] == trip["handover_at"]


def test_wrong_seal_raises_exactly_one_mismatch(api: tuple[Harness, TestClient]) -> None:
    h, client = api
    _trip(h, client, "T-2", "TRK-2", "C-2", seals=SEALS)
    _fix(h, "TRK-2", DEPART + 3000, *DEST)
    r = _handover(h, client, "T-2", [SEALS[0], "KPU-3517-9999999"], DEPART + 3600)
    assert r.status_code == 201, r.text
    ho = r.json()
    assert ho["in_destination"] is True and ho["seals_match"] is False
    [alert] = _mismatches(h, "TRK-2")
    assert alert.id == ho["alert_id"] and alert.trip_id == "T-2" and alert.severity == "major"
    assert alert.details["reasons"] == ["seals_differ"]
    assert alert.details["missing_seals"] == [SEALS[1]]
    assert alert.details["unexpected_seals"] == ["KPU-3517-9999999"]
    assert alert.details["handover_id"] == ho["id"]
    assert alert.ts == "2024-11-20T01:00:00.000Z"
    assert h.ctx.audit.verify().ok and verify_handovers(h.ctx.db) is None
    # Raised through the alert store: on the stream's replay log, and audited with the handover.
    streamed = [a for _, a in h.ctx.alerts.events_after(0) if a.type == AlertType.HANDOVER_MISMATCH]
    assert [a.id for a in streamed] == [alert.id]
    actions = [r.action for r in h.ctx.audit.records(after_seq=0, limit=1000)]
    assert actions[-2:] == ["alert.raise", "custody.handover"]


def test_handover_away_from_destination_raises_exactly_one_mismatch(api: tuple[Harness, TestClient]) -> None:
    h, client = api
    _trip(h, client, "T-3", "TRK-3", "C-3", seals=SEALS)
    _fix(h, "TRK-3", DEPART + 3000, -7.5600, 112.2310)  # on the route, 2.8 km short
    r = _handover(h, client, "T-3", SEALS, DEPART + 3600)
    assert r.status_code == 201, r.text
    ho = r.json()
    assert ho["in_destination"] is False and ho["seals_match"] is True
    assert ho["distance_m"] > 2000
    [alert] = _mismatches(h, "TRK-3")
    assert alert.details["reasons"] == ["outside_destination"]
    assert alert.details["destination"] == "PPK Diwek" and alert.details["distance_m"] == ho["distance_m"]
    assert (alert.lat, alert.lon) == (-7.5600, 112.2310)


def test_trip_without_seals_and_without_fix(api: tuple[Harness, TestClient]) -> None:
    h, client = api
    _trip(h, client, "T-4", "TRK-4", "C-4")
    r = _handover(h, client, "T-4", [], DEPART + 3600)
    ho = r.json()
    assert ho["seals_match"] is None and ho["position"] is None and ho["in_destination"] is False
    [alert] = _mismatches(h, "TRK-4")
    assert alert.details["reasons"] == ["no_fix"]


def test_second_handover_conflicts_and_unknown_trip_is_404(api: tuple[Harness, TestClient]) -> None:
    h, client = api
    _trip(h, client, "T-5", "TRK-5", "C-5", seals=SEALS)
    _fix(h, "TRK-5", DEPART + 3000, *DEST)
    assert _handover(h, client, "T-5", SEALS, DEPART + 3600).status_code == 201
    again = _handover(h, client, "T-5", ["OTHER"], DEPART + 3700)
    assert again.status_code == 409, again.text
    assert _mismatches(h, "TRK-5") == []  # the refused handover raised nothing
    assert len([r for r in h.ctx.audit.records(subject="trip:T-5") if r.action == "custody.handover"]) == 1
    assert _handover(h, client, "NOPE", SEALS, DEPART).status_code == 404
    viewer = client.post("/api/v1/trips/T-5/handover", json={"receiver": {"name": "x"}}, headers=h.headers("viewer"))
    assert viewer.status_code == 403
    for body in (
        {"seals": ["x"]},  # no receiver
        {"receiver": {"name": "x"}, "at": time.time() + 2 * 86400},  # a day ahead
        {"receiver": {"name": "x"}, "at": "1999-12-31T23:00:00Z"},
        {"receiver": {"name": "x"}, "seals": [" "]},
    ):
        bad = client.post("/api/v1/trips/T-5/handover", json=body, headers=h.headers("operator"))
        assert bad.status_code == 422, body


def test_seal_change_between_legs_without_handover_is_flagged(api: tuple[Harness, TestClient]) -> None:
    h, client = api
    _trip(h, client, "L-1", "TRK-6", "C-6", seals=SEALS)
    body = trip_body(tracker_id="TRK-6", crate_id="C-6", depart=DEPART + 7200, arrive=DEPART + 9 * 3600)
    body.update(seals=["KPU-NEW-1"], previous_trip_id="L-1")
    assert client.put("/api/v1/trips/L-2", json=body, headers=h.headers("admin")).status_code == 200
    _fix(h, "TRK-6", DEPART + 8000, *DEST)
    ho = _handover(h, client, "L-2", ["KPU-NEW-1"], DEPART + 8400).json()
    assert ho["seals_match"] is True
    [alert] = _mismatches(h, "TRK-6")
    assert alert.details["reasons"] == ["seal_change_without_handover"]
    assert alert.details["previous_seals"] == SEALS
    legs = client.get("/api/v1/crates/C-6/custody", headers=h.headers("viewer")).json()["items"]
    assert [leg["trip"]["trip_id"] for leg in legs] == ["L-1", "L-2"]
    assert legs[0]["handover"] is None and legs[1]["handover"]["id"] == ho["id"]
    assert legs[1]["flags"] == ["seal_change_without_handover"] and legs[0]["flags"] == []
    # The receipt on this backend: the flag, the hash, and what officers typed, escaped.
    body = {"receiver": {"name": "<script>alert(1)</script>"}, "seals": SEALS, "at": DEPART + 3000}
    _trip(h, client, "L-0", "TRK-6b", "C-6", seals=SEALS)
    client.post("/api/v1/trips/L-0/handover", json=body, headers=h.headers("operator"))
    page = client.get("/api/v1/crates/C-6/receipt", headers=h.headers("viewer"))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert ho["audit_hash"] in page.text and "seal_change_without_handover" in page.text
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert client.get("/api/v1/crates/NOPE/receipt", headers=h.headers("viewer")).status_code == 404
    assert client.get("/api/v1/crates/NOPE/custody", headers=h.headers("viewer")).status_code == 404


def _kawal(db_location: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAWAL_DB": db_location}
    return subprocess.run([sys.executable, "-m", "kawal", *args], env=env, capture_output=True, text=True, timeout=60)


def test_editing_a_handover_row_breaks_audit_verify(api: tuple[Harness, TestClient], backend: Backend) -> None:
    h, client = api
    _trip(h, client, "T-7", "TRK-7", "C-7", seals=SEALS)
    _fix(h, "TRK-7", DEPART + 3000, *DEST)
    ho = _handover(h, client, "T-7", SEALS, DEPART + 3600).json()
    location = backend.target
    ok = _kawal(location, "audit", "verify", "--hash", ho["audit_hash"])
    assert ok.returncode == 0, ok.stderr
    assert ho["audit_hash"] in ok.stdout and "custody.handover" in ok.stdout
    unknown = _kawal(location, "audit", "verify", "--hash", "0" * 64)
    assert unknown.returncode == 1 and "not in the audit log" in unknown.stderr
    db = h.ctx.db
    with db.write() as c, pytest.raises(Exception, match="append-only"):  # the SQL path is closed ...
        c.execute("UPDATE handovers SET receiver_name = 'Someone Else' WHERE trip_id = 'T-7'")
    # ... so the forger goes around it.
    if db.dialect == "sqlite":
        statements = [
            "DROP TRIGGER handovers_no_update",
            "UPDATE handovers SET receiver_name = 'Someone Else' WHERE trip_id = 'T-7'",
        ]
    else:
        statements = [
            "ALTER TABLE handovers DISABLE TRIGGER handovers_no_update",
            "UPDATE handovers SET receiver_name = 'Someone Else' WHERE trip_id = 'T-7'",
        ]
    with db.write() as c:
        for sql in statements:
            c.execute(sql)
    broken = _kawal(location, "audit", "verify")
    assert broken.returncode == 1
    assert "altered" in broken.stderr and ho["id"] in broken.stderr
    assert _kawal(location, "audit", "verify", "--hash", ho["audit_hash"]).returncode == 1


def test_racing_handovers_record_one(api: tuple[Harness, TestClient]) -> None:
    h, client = api
    _trip(h, client, "T-8", "TRK-8", "C-8", seals=SEALS)
    _fix(h, "TRK-8", DEPART + 3000, *DEST)
    store = custody_store(h.ctx)
    body = HandoverIn.model_validate({"receiver": {"name": "A"}, "seals": ["WRONG"], "at": DEPART + 3600})
    barrier = threading.Barrier(4)

    def sign(i: int) -> str:
        barrier.wait()
        try:
            store.record("T-8", body, f"officer-{i}")
        except HandoverConflict:
            return "409"
        return "201"

    with ThreadPoolExecutor(4) as pool:
        results = sorted(pool.map(sign, range(4)))
    assert results == ["201", "409", "409", "409"]
    assert len(_mismatches(h, "TRK-8")) == 1
    assert h.ctx.audit.verify().ok and verify_handovers(h.ctx.db) is None
