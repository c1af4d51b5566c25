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
    created_at  REAL NOT NULL,
    -- The latest state by event time, kept by ReadingStore.insert in the transaction that stores the
    -- readings (ingest/latest.py), so crate views read one row instead of searching the track.
    -- Order is (ts, seq), as in ReadingStore.latest / latest_fix / last_seal.
    last_seen   REAL,                          -- max(ts) of its readings
    fix_ts      REAL,                          -- the latest reading with a usable position
    fix_seq     INTEGER,
    fix_lat     REAL,
    fix_lon     REAL,
    fix_acc     REAL,
    fix_spd     REAL,
    fix_hdg     REAL,
    fix_bat     REAL,
    seal        TEXT,                          -- the latest reading that reported the seal
    seal_ts     REAL,
    seal_seq    INTEGER
);
CREATE INDEX IF NOT EXISTS trackers_crate ON trackers (crate_id);

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
-- Covers the crate views' scan of every trip (api/crates.py) without reading the trips' large bodies.
CREATE INDEX IF NOT EXISTS trips_view ON trips (crate_id, depart_after, trip_id, tracker_id, updated_at);

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

# Columns of the trackers table added after the first release. A file created before them gets them on
# open (ALTER TABLE ... ADD COLUMN), then TRACKER_STATE_BACKFILL derives their values from the readings.
TRACKER_STATE_COLUMNS = (
    ("last_seen", "REAL"),
    ("fix_ts", "REAL"),
    ("fix_seq", "INTEGER"),
    ("fix_lat", "REAL"),
    ("fix_lon", "REAL"),
    ("fix_acc", "REAL"),
    ("fix_spd", "REAL"),
    ("fix_hdg", "REAL"),
    ("fix_bat", "REAL"),
    ("seal", "TEXT"),
    ("seal_ts", "REAL"),
    ("seal_seq", "INTEGER"),
)

# One statement: per tracker, max(ts), and the rows of its latest fix and latest seal report found by
# walking the readings_dedup index backwards. Trackers without a registry row get one.
TRACKER_STATE_BACKFILL = """
INSERT INTO trackers (tracker_id, created_at, last_seen, fix_ts, fix_seq, fix_lat, fix_lon, fix_acc, fix_spd,
                      fix_hdg, fix_bat, seal, seal_ts, seal_seq)
SELECT s.tracker_id, s.first_received, s.last_seen, f.ts, f.seq, f.lat, f.lon, f.acc, f.spd, f.hdg, f.bat,
       z.seal, z.ts, z.seq
FROM (SELECT tracker_id, max(ts) AS last_seen, min(received_at) AS first_received
      FROM readings GROUP BY tracker_id) AS s
LEFT JOIN readings AS f ON f.id = (
    SELECT id FROM readings WHERE tracker_id = s.tracker_id
    AND lat IS NOT NULL AND lon IS NOT NULL AND NOT (lat = 0 AND lon = 0)
    ORDER BY ts DESC, seq DESC LIMIT 1)
LEFT JOIN readings AS z ON z.id = (
    SELECT id FROM readings WHERE tracker_id = s.tracker_id AND seal IS NOT NULL
    ORDER BY ts DESC, seq DESC LIMIT 1)
WHERE true
ON CONFLICT (tracker_id) DO UPDATE SET
    last_seen = excluded.last_seen, fix_ts = excluded.fix_ts, fix_seq = excluded.fix_seq,
    fix_lat = excluded.fix_lat, fix_lon = excluded.fix_lon, fix_acc = excluded.fix_acc,
    fix_spd = excluded.fix_spd, fix_hdg = excluded.fix_hdg, fix_bat = excluded.fix_bat,
    seal = excluded.seal, seal_ts = excluded.seal_ts, seal_seq = excluded.seal_seq
"""


def _add_tracker_state(conn: sqlite3.Connection) -> None:
    """Upgrade a file from before the tracker state: add the columns and backfill them, in one transaction
    (so a crash or a second process opening the file at the same time cannot leave half of it)."""

    def missing() -> list[tuple[str, str]]:
        have = {str(r[1]) for r in conn.execute("PRAGMA table_info(trackers)")}
        return [(c, d) for c, d in TRACKER_STATE_COLUMNS if c not in have]

    if not missing():
        return  # the usual case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        todo = missing()  # again, under the lock: another process may have upgraded meanwhile
        for column, decl in todo:
            conn.execute(f"ALTER TABLE trackers ADD COLUMN {column} {decl}")
        if todo:
            conn.execute(TRACKER_STATE_BACKFILL)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Database:
    """Opens connections to one SQLite file. Connections are not shared between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as conn:
            conn.executescript(SCHEMA)
            _add_tracker_state(conn)

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
