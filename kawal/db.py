"""The embedded SQLite database: one file, WAL mode, one connection per thread.

Every table lives in SCHEMA so all stages agree on it; each stage owns the queries on its own tables.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The track: every valid reading, stored once. A duplicate has the same tracker, time and counter.
CREATE TABLE IF NOT EXISTS readings (
    id          INTEGER PRIMARY KEY,
    tracker_id  TEXT    NOT NULL,
    ts          REAL    NOT NULL,
    seq         INTEGER NOT NULL DEFAULT -1,   -- -1 when the tracker sent no seq
    lat         REAL,
    lon         REAL,
    acc         REAL,
    spd         REAL,
    hdg         REAL,
    bat         REAL,
    seal        TEXT,
    extra       TEXT,                          -- JSON of unknown fields, or NULL
    received_at REAL    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS readings_dedup ON readings (tracker_id, ts, seq);

-- Rejected payloads, truncated to 4 KiB, for operators to inspect.
CREATE TABLE IF NOT EXISTS rejected (
    id          INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT,
    payload     BLOB NOT NULL
);

-- Tracker registry: which trackers exist and which crate each is fixed to.
CREATE TABLE IF NOT EXISTS trackers (
    tracker_id  TEXT PRIMARY KEY,
    crate_id    TEXT,
    status      TEXT,                          -- last MQTT status: online / offline
    status_at   REAL,
    created_at  REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS trips (
    trip_id      TEXT PRIMARY KEY,
    tracker_id   TEXT NOT NULL,
    crate_id     TEXT NOT NULL,
    depart_after REAL NOT NULL,
    arrive_by    REAL NOT NULL,
    body         TEXT NOT NULL,                -- the Trip as JSON
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trips_tracker ON trips (tracker_id, depart_after);
CREATE INDEX IF NOT EXISTS trips_crate ON trips (crate_id, depart_after);

CREATE TABLE IF NOT EXISTS alerts (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    trip_id     TEXT,
    crate_id    TEXT,
    tracker_id  TEXT NOT NULL,
    ts          REAL NOT NULL,
    raised_at   REAL NOT NULL,
    updated_at  REAL NOT NULL,
    lat         REAL,
    lon         REAL,
    details     TEXT NOT NULL DEFAULT '{}',
    history     TEXT NOT NULL DEFAULT '[]',    -- who changed it and when
    last_ts     REAL                           -- event time of the latest raise (a new episode changes it)
);
-- At most one unresolved alert per (tracker, type), enforced by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (tracker_id, type) WHERE status != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_raised ON alerts (raised_at);

-- Every alert change, in order: the ids of the live stream, replayed after Last-Event-ID.
CREATE TABLE IF NOT EXISTS alert_events (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id    TEXT NOT NULL,
    at          REAL NOT NULL,
    alert       TEXT NOT NULL                  -- the Alert JSON as sent
);

CREATE TABLE IF NOT EXISTS tokens (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL
);

-- Append-only, hash-chained audit log (chain of custody).
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
-- Append-only through SQL too; editing the file by other means is what `kawal audit verify` catches.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Detector state snapshots, so a restart mid-trip keeps its timers.
CREATE TABLE IF NOT EXISTS detector_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    reading_id  INTEGER NOT NULL,              -- readings up to this id are reflected in the state
    state       BLOB NOT NULL,
    saved_at    REAL NOT NULL
);
"""


class Database:
    """Opens connections to one SQLite file. Connections are not shared between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable against process crashes, which is what the contract promises.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.row_factory = sqlite3.Row
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's own connection, opened on first use."""
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            c = self.connect()
            self._local.conn = c
        return c

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection (BEGIN IMMEDIATE: no lock upgrades that race)."""
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")
