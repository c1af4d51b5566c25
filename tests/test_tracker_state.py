"""The materialised tracker state (ingest/latest.py, columns of `trackers`) says what the track says.

After every batch (out of order, duplicated, without fixes, on Null Island, seal-only, same time with
different counters, rolled back, through the ingest worker) and after upgrading a file from before the
state existed, `ReadingStore.state(t)` equals what `latest`, `latest_fix` and `last_seal` find by searching
the readings themselves.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devices.reading import Reading
from devices.registry import TrackerRegistry
from ingest.latest import TrackerState
from ingest.mqtt import InboundMessage
from ingest.pipeline import IngestPipeline, NullDetector
from ingest.readings import ReadingStore
from kawal.clock import WallClock
from kawal.metrics import Metrics
from kawal.trips import TripIn, TripRepository
from storage import Database
from storage.migrate import migrations
from storage.sqlite import SqliteDatabase
from storage.sqlite.legacy import TRACKER_STATE_COLUMNS
from tests.api_harness import make_harness, trip_body

T = 1_732_060_800.0


@pytest.fixture
def db(database: Database) -> Database:
    """The backend-neutral tests run on both backends; the upgrade tests below are SQLite's own."""
    return database


def insert(
    db: Database, store: ReadingStore, readings: Iterable[Reading], received_at: float = T
) -> list[Reading]:
    with db.write() as conn:
        return store.insert(conn, list(readings), received_at)


def from_track(store: ReadingStore, tracker_id: str) -> TrackerState | None:
    """What the readings say, by the queries the crate views used before the state existed."""
    latest = store.latest(tracker_id)
    if latest is None:
        return None
    fix = store.latest_fix(tracker_id)
    if fix is not None:  # only the fix fields are kept
        fix = Reading(tracker_id, fix.ts, fix.lat, fix.lon, fix.seq, fix.acc, fix.spd, fix.hdg, fix.bat)
    return TrackerState(tracker_id, latest.ts, fix, store.last_seal(tracker_id))  # type: ignore[arg-type]


def assert_matches_track(store: ReadingStore, trackers: Iterable[str]) -> None:
    for t in trackers:
        assert store.state(t) == from_track(store, t), t


def test_out_of_order_batches_only_move_forward(db: Database) -> None:
    s = ReadingStore(db)
    insert(db, s, [Reading("A", T + 100, -7.5, 112.2, seq=10, acc=5, spd=30, hdg=90, bat=80, seal="closed")])
    # A backlog of older readings arrives later: nothing of it is newer.
    insert(db, s, [Reading("A", T + 50, -7.6, 112.3, seq=5, bat=90, seal="open"), Reading("A", T + 10, -7.7, 112.4)])
    state = s.state("A")
    assert state is not None and state.last_seen == T + 100
    assert state.fix is not None and (state.fix.ts, state.fix.lat, state.fix.bat) == (T + 100, -7.5, 80.0)
    assert state.seal == ("closed", T + 100)
    assert_matches_track(s, ["A"])
    # A batch in reverse order, mixing newer and older.
    insert(
        db, s, [Reading("A", T + 300, None, None, seq=30), Reading("A", T + 200, -7.4, 112.1, seq=20, seal="tampered")]
    )
    state = s.state("A")
    assert state is not None and state.last_seen == T + 300
    assert state.fix is not None and state.fix.ts == T + 200 and state.seal == ("tampered", T + 200)
    assert_matches_track(s, ["A"])


def test_duplicates_change_nothing(db: Database) -> None:
    s = ReadingStore(db)
    batch = [Reading("A", T + 1, -7.5, 112.2, seq=1, seal="closed"), Reading("A", T + 2, -7.6, 112.3, seq=2)]
    insert(db, s, batch + batch)  # duplicates inside the batch
    before = s.state("A")
    assert insert(db, s, list(reversed(batch))) == []  # and a redelivery of the whole batch
    assert s.state("A") == before
    assert_matches_track(s, ["A"])


def test_readings_without_fix_and_null_island_keep_the_last_fix(db: Database) -> None:
    s = ReadingStore(db)
    insert(db, s, [Reading("A", T + 1, -7.5, 112.2, seq=1, acc=4, bat=70)])
    insert(db, s, [Reading("A", T + 2, None, None, seq=2, bat=69), Reading("A", T + 3, 0.0, 0.0, seq=3, bat=68)])
    state = s.state("A")
    assert state is not None and state.last_seen == T + 3
    assert state.fix is not None and (state.fix.ts, state.fix.lat, state.fix.lon, state.fix.bat) == (
        T + 1,
        -7.5,
        112.2,
        70.0,
    )
    assert_matches_track(s, ["A"])
    # A tracker that never had a fix: seen, no fix, no seal.
    insert(db, s, [Reading("B", T + 5, 0.0, 0.0), Reading("B", T + 4)])
    assert s.state("B") == TrackerState("B", T + 5, None, None)
    assert_matches_track(s, ["B"])


def test_seal_only_readings_move_the_seal_not_the_fix(db: Database) -> None:
    s = ReadingStore(db)
    insert(db, s, [Reading("A", T + 1, -7.5, 112.2, seq=1, seal="closed")])
    insert(db, s, [Reading("A", T + 5, seq=5, seal="open")])
    insert(db, s, [Reading("A", T + 3, seq=3, seal="tampered")])  # late: older than "open"
    state = s.state("A")
    assert state is not None and state.seal == ("open", T + 5) and state.last_seen == T + 5
    assert state.fix is not None and state.fix.ts == T + 1
    assert_matches_track(s, ["A"])


def test_same_time_is_ordered_by_counter(db: Database) -> None:
    s = ReadingStore(db)
    insert(db, s, [Reading("A", T, -7.5, 112.2, seq=2, seal="closed")])
    insert(db, s, [Reading("A", T, -7.6, 112.3, seq=1, seal="open")])  # same time, lower counter: older
    insert(db, s, [Reading("A", T, -7.7, 112.4, seal="tampered")])  # no counter sorts below any counter
    state = s.state("A")
    assert state is not None and state.fix is not None and (state.fix.lat, state.fix.seq) == (-7.5, 2)
    assert state.seal == ("closed", T)
    insert(db, s, [Reading("A", T, -7.8, 112.5, seq=3, seal="open")])
    state = s.state("A")
    assert state is not None and state.fix is not None and state.fix.seq == 3 and state.seal == ("open", T)
    assert_matches_track(s, ["A"])


def test_state_rolls_back_with_the_readings(db: Database) -> None:
    s = ReadingStore(db)
    insert(db, s, [Reading("A", T + 1, -7.5, 112.2, seq=1)])
    before = s.state("A")
    with pytest.raises(RuntimeError), db.write() as conn:
        s.insert(conn, [Reading("A", T + 9, -7.9, 112.9, seq=9, seal="open")], T)
        raise RuntimeError("crash before the commit")
    assert s.state("A") == before
    assert s.state("NEW") is None


def test_random_batches_always_match_the_track(db: Database) -> None:
    rng = random.Random(20241120)
    s = ReadingStore(db)
    trackers = [f"TRK-{i}" for i in range(6)]
    sent: list[Reading] = []
    for _ in range(60):
        batch: list[Reading] = []
        for _ in range(rng.randint(1, 25)):
            if sent and rng.random() < 0.2:
                batch.append(rng.choice(sent))  # a redelivery
                continue
            kind = rng.random()
            lat, lon = (None, None) if kind < 0.2 else (0.0, 0.0) if kind < 0.3 else (rng.uniform(-8, -7), 112.2)
            r = Reading(
                rng.choice(trackers),
                T + rng.randint(0, 40),  # out of order, and many readings share a time
                lat,
                lon,
                seq=rng.choice([None, rng.randint(0, 5)]),
                acc=rng.choice([None, 5.0]),
                bat=rng.choice([None, rng.uniform(0, 100)]),
                seal=rng.choice([None, None, "closed", "open", "tampered"]),
            )
            batch.append(r)
            sent.append(r)
        insert(db, s, batch)
        assert_matches_track(s, trackers)


def test_registry_rows_keep_their_fields(db: Database) -> None:
    s, reg = ReadingStore(db), TrackerRegistry(db)
    reg.assign("A", "C-1", now=T - 10)
    with db.write() as conn:
        reg.set_status(conn, "A", "online", T - 5)
    insert(db, s, [Reading("A", T, -7.5, 112.2), Reading("NEW", T, -7.5, 112.2)], received_at=T + 7)
    assert reg.get("A") == {
        "tracker_id": "A",
        "crate_id": "C-1",
        "status": "online",
        "status_at": T - 5,
        "created_at": T - 10,
    }
    # A tracker first seen in a batch is registered by it, at the batch's time.
    assert reg.get("NEW") == {
        "tracker_id": "NEW",
        "crate_id": None,
        "status": None,
        "status_at": None,
        "created_at": T + 7,
    }


def test_the_ingest_worker_keeps_the_state(db: Database) -> None:
    store = ReadingStore(db)
    acked: list[int] = []
    p = IngestPipeline(
        db, store, TrackerRegistry(db), NullDetector(), WallClock(), Metrics(), lambda m: acked.append(m.mid)
    )
    now = time.time()
    payloads: list[Any] = [
        [{"ts": now - 60, "seq": 6, "lat": -7.55, "lon": 112.23, "bat": 50, "seal": "closed"}],
        # A store-and-forward backlog: older, out of order, with a duplicate and a seal-only reading.
        [
            {"ts": now - 300, "seq": 2, "lat": -7.50, "lon": 112.20},
            {"ts": now - 400, "seq": 1, "seal": "open"},
            {"ts": now - 60, "seq": 6, "lat": -7.55, "lon": 112.23, "bat": 50, "seal": "closed"},
            {"ts": now - 30, "seq": 7},
        ],
        {"ts": now - 20, "seq": 8, "lat": 0, "lon": 0},
    ]
    for mid, body in enumerate(payloads, 1):
        p.submit(InboundMessage("kawal/v1/TRK-7/telemetry", json.dumps(body).encode(), mid, 1, time.time()))
    p.start()
    try:
        deadline = time.monotonic() + 20
        while len(acked) < len(payloads) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        p.stop()
    assert sorted(acked) == [1, 2, 3]
    state = store.state("TRK-7")
    assert state is not None and state.last_seen == pytest.approx(now - 20)
    assert state.fix is not None and (state.fix.lat, state.fix.bat) == (-7.55, 50.0)
    assert state.seal is not None and state.seal[0] == "closed"
    assert_matches_track(store, ["TRK-7"])


# -- upgrading a file from before the state --------------------------------------------------------------

OLD_TRACKERS = """CREATE TABLE IF NOT EXISTS trackers (
    tracker_id  TEXT PRIMARY KEY,
    crate_id    TEXT,
    status      TEXT,
    status_at   REAL,
    created_at  REAL NOT NULL
);
"""


def old_schema() -> str:
    """The base schema as it was before the state: the old trackers table, without its index."""
    SCHEMA = migrations("sqlite")[0].sql
    start = SCHEMA.index("CREATE TABLE IF NOT EXISTS trackers (")
    end = SCHEMA.index(");", start) + 3
    old = SCHEMA[:start] + OLD_TRACKERS + SCHEMA[end:]
    return "\n".join(line for line in old.splitlines() if "trackers_crate" not in line)


def make_old_file(path: Path, readings: list[Reading]) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(old_schema())
    rows = [
        (r.tracker_id, r.ts, -1 if r.seq is None else r.seq, r.lat, r.lon, r.acc, r.spd, r.hdg, r.bat, r.seal, T + i)
        for i, r in enumerate(readings)
    ]
    conn.executemany(
        "INSERT OR IGNORE INTO readings (tracker_id, ts, seq, lat, lon, acc, spd, hdg, bat, seal, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("INSERT INTO trackers VALUES ('A', 'C-1', 'online', ?, ?)", (T - 5, T - 10))
    conn.execute("INSERT INTO trackers VALUES ('IDLE', NULL, NULL, NULL, ?)", (T - 10,))
    conn.commit()
    conn.close()


def old_readings(rng: random.Random) -> list[Reading]:
    out = []
    for i in range(300):
        kind = rng.random()
        lat, lon = (None, None) if kind < 0.25 else (0.0, 0.0) if kind < 0.35 else (rng.uniform(-8, -7), 112.2)
        out.append(
            Reading(
                rng.choice(["A", "B", "C"]),  # B and C have readings but no registry row
                T + rng.randint(0, 100),
                lat,
                lon,
                seq=rng.choice([None, i]),
                acc=5.0,
                bat=rng.uniform(0, 100),
                seal=rng.choice([None, None, "closed", "open"]),
            )
        )
    return out


def test_an_old_file_is_upgraded_and_backfilled_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_old_file(path, old_readings(random.Random(7)))
    db = SqliteDatabase(path)
    columns = {r[1] for r in db.conn().execute("PRAGMA table_info(trackers)")}
    assert {c for c, _ in TRACKER_STATE_COLUMNS} <= columns
    store, reg = ReadingStore(db), TrackerRegistry(db)
    assert_matches_track(store, ["A", "B", "C"])
    assert store.state("IDLE") == TrackerState("IDLE", None, None, None)
    # Registry rows are kept; trackers known only from readings are registered at their first reading.
    assert reg.get("A") == {
        "tracker_id": "A",
        "crate_id": "C-1",
        "status": "online",
        "status_at": T - 5,
        "created_at": T - 10,
    }
    first_b = db.conn().execute("SELECT min(received_at) FROM readings WHERE tracker_id = 'B'").fetchone()[0]
    b = reg.get("B")
    assert b is not None and b["created_at"] == first_b
    # The upgraded file goes on like a new one, and opening it again changes nothing.
    insert(db, store, [Reading("A", T + 1000, -7.1, 112.1, seq=999, seal="tampered")])
    again = SqliteDatabase(path)
    assert_matches_track(ReadingStore(again), ["A", "B", "C"])
    state = store.state("A")
    assert state is not None and state.seal == ("tampered", T + 1000)


def test_processes_opening_an_old_file_at_once_upgrade_it_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_old_file(path, old_readings(random.Random(8)))
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            SqliteDatabase(path)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert_matches_track(ReadingStore(SqliteDatabase(path)), ["A", "B", "C"])


def test_the_crate_view_of_an_upgraded_file_is_not_empty(tmp_path: Path) -> None:
    path = tmp_path / "kawal.db"
    make_old_file(path, [Reading("A", T + 60, -7.585, 112.23, seq=1, acc=6, bat=77, seal="closed")])
    h = make_harness(tmp_path, crate_cache_s=0.0)  # opens the file: upgrade and backfill
    body = TripIn.model_validate(trip_body(tracker_id="A", crate_id="C-1", depart=T, arrive=T + 7200))
    TripRepository(h.ctx.db).put("T-1", body)
    with TestClient(h.app) as client:
        crate = client.get("/api/v1/crates/C-1", headers=h.headers("viewer")).json()
    assert crate["last_seen"] == "2024-11-20T00:01:00.000Z" and crate["seal"] == "closed"
    assert crate["last_fix"] == {
        "ts": "2024-11-20T00:01:00.000Z",
        "lat": -7.585,
        "lon": 112.23,
        "acc": 6.0,
        "spd": None,
        "hdg": None,
        "bat": 77.0,
    }
