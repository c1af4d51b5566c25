-- Chain of custody (CONTRACT 2.2 and 2.6, version 2): linked legs on trips, and the handovers.
-- The trip's seals live in its body; these columns are for the queries that follow a crate's chain.
ALTER TABLE trips ADD COLUMN previous_trip_id TEXT;
ALTER TABLE trips ADD COLUMN direction TEXT NOT NULL DEFAULT 'outbound';
ALTER TABLE trips ADD COLUMN handover_at DOUBLE PRECISION;   -- set once, by the trip's handover
CREATE INDEX IF NOT EXISTS trips_previous ON trips (previous_trip_id);

-- One row per handover, at most one per trip. Each row is also in the audit log (action
-- `custody.handover`, record `audit_seq`), with the same content: `kawal audit verify` compares them.
CREATE TABLE IF NOT EXISTS handovers (
    id              TEXT PRIMARY KEY,
    trip_id         TEXT NOT NULL UNIQUE,
    crate_id        TEXT NOT NULL,
    tracker_id      TEXT NOT NULL,
    receiver_name   TEXT NOT NULL,
    receiver_role   TEXT,
    seals           TEXT NOT NULL,                 -- JSON array of the seal numbers the receiver read
    at              DOUBLE PRECISION NOT NULL,     -- when the crate changed hands
    recorded_by     TEXT NOT NULL,                 -- the token name
    recorded_at     DOUBLE PRECISION NOT NULL,
    pos_ts          DOUBLE PRECISION,              -- the tracker's last fix at or before `at`
    pos_lat         DOUBLE PRECISION,
    pos_lon         DOUBLE PRECISION,
    distance_m      DOUBLE PRECISION,              -- from that fix to the destination's centre
    in_destination  BIGINT NOT NULL,               -- 0 / 1
    seals_match     BIGINT,                        -- 0 / 1, NULL when the trip has no seals
    note            TEXT,
    alert_id        TEXT,                          -- the handover_mismatch it raised, if any
    audit_seq       BIGINT NOT NULL,
    audit_hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS handovers_crate ON handovers (crate_id, at);
