-- The base schema: every table of Kawal's first release.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The track: every valid reading, stored once. A duplicate has the same tracker, time and counter.
CREATE TABLE IF NOT EXISTS readings (
    id          {pk},
    tracker_id  TEXT    NOT NULL,
    ts          DOUBLE PRECISION    NOT NULL,
    seq         BIGINT NOT NULL DEFAULT -1,   -- -1 when the tracker sent no seq
    lat         DOUBLE PRECISION,
    lon         DOUBLE PRECISION,
    acc         DOUBLE PRECISION,
    spd         DOUBLE PRECISION,
    hdg         DOUBLE PRECISION,
    bat         DOUBLE PRECISION,
    seal        TEXT,
    extra       TEXT,                          -- JSON of unknown fields, or NULL
    received_at DOUBLE PRECISION    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS readings_dedup ON readings (tracker_id, ts, seq);

-- Rejected payloads, truncated to 4 KiB, for operators to inspect.
CREATE TABLE IF NOT EXISTS rejected (
    id          {pk},
    received_at DOUBLE PRECISION NOT NULL,
    topic       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT,
    payload     {blob} NOT NULL
);

-- Tracker registry: which trackers exist and which crate each is fixed to.
CREATE TABLE IF NOT EXISTS trackers (
    tracker_id  TEXT PRIMARY KEY,
    crate_id    TEXT,
    status      TEXT,                          -- last MQTT status: online / offline
    status_at   DOUBLE PRECISION,
    created_at  DOUBLE PRECISION NOT NULL,
    -- The latest state by event time, kept by ReadingStore.insert in the transaction that stores the
    -- readings (ingest/latest.py), so crate views read one row instead of searching the track.
    -- Order is (ts, seq), as in ReadingStore.latest / latest_fix / last_seal.
    last_seen   DOUBLE PRECISION,                          -- max(ts) of its readings
    fix_ts      DOUBLE PRECISION,                          -- the latest reading with a usable position
    fix_seq     BIGINT,
    fix_lat     DOUBLE PRECISION,
    fix_lon     DOUBLE PRECISION,
    fix_acc     DOUBLE PRECISION,
    fix_spd     DOUBLE PRECISION,
    fix_hdg     DOUBLE PRECISION,
    fix_bat     DOUBLE PRECISION,
    seal        TEXT,                          -- the latest reading that reported the seal
    seal_ts     DOUBLE PRECISION,
    seal_seq    BIGINT
);
CREATE INDEX IF NOT EXISTS trackers_crate ON trackers (crate_id);

CREATE TABLE IF NOT EXISTS trips (
    trip_id      TEXT PRIMARY KEY,
    tracker_id   TEXT NOT NULL,
    crate_id     TEXT NOT NULL,
    depart_after DOUBLE PRECISION NOT NULL,
    arrive_by    DOUBLE PRECISION NOT NULL,
    body         TEXT NOT NULL,                -- the Trip as JSON
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL
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
    ts          DOUBLE PRECISION NOT NULL,
    raised_at   DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    lat         DOUBLE PRECISION,
    lon         DOUBLE PRECISION,
    details     TEXT NOT NULL DEFAULT '{}',
    history     TEXT NOT NULL DEFAULT '[]',    -- who changed it and when
    last_ts     DOUBLE PRECISION                           -- event time of the latest raise (a new episode changes it)
);
-- At most one unresolved alert per (tracker, type), enforced by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (tracker_id, type) WHERE status != 'resolved';
CREATE INDEX IF NOT EXISTS alerts_raised ON alerts (raised_at);

-- Every alert change, in order: the ids of the live stream, replayed after Last-Event-ID.
CREATE TABLE IF NOT EXISTS alert_events (
    event_id    {serial},
    alert_id    TEXT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    alert       TEXT NOT NULL                  -- the Alert JSON as sent
);

CREATE TABLE IF NOT EXISTS tokens (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  DOUBLE PRECISION NOT NULL
);

-- Append-only, hash-chained audit log (chain of custody).
CREATE TABLE IF NOT EXISTS audit (
    seq         BIGINT PRIMARY KEY,
    at          DOUBLE PRECISION NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    data        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
-- Detector state snapshots, so a restart mid-trip keeps its timers.
CREATE TABLE IF NOT EXISTS detector_state (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    reading_id  BIGINT NOT NULL,              -- readings up to this id are reflected in the state
    state       {blob} NOT NULL,
    saved_at    DOUBLE PRECISION NOT NULL
);
