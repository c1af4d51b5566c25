-- Readings a tracker never delivered, counted from its `seq` (CONTRACT 1.1; ingest/seqgaps.py).
-- trackers.seq_missing is what the crate views show; seq_gaps keeps the counting state of each tracker's
-- current run of sequence numbers (a reboot starts a new run), saved with the last reading it had seen.
ALTER TABLE trackers ADD COLUMN seq_missing BIGINT;
CREATE TABLE IF NOT EXISTS seq_gaps (
    tracker_id  TEXT PRIMARY KEY,
    lo          BIGINT NOT NULL,             -- lowest seq of the current run
    hi          BIGINT NOT NULL,             -- highest seq of the current run
    received    BIGINT NOT NULL,             -- readings of the run stored
    min_ts      DOUBLE PRECISION NOT NULL,   -- event time of the run's earliest and latest readings
    max_ts      DOUBLE PRECISION NOT NULL,
    closed      BIGINT NOT NULL              -- missing readings of the runs before it (before reboots)
);
CREATE TABLE IF NOT EXISTS seq_gaps_mark (
    id          INTEGER PRIMARY KEY,
    reading_id  BIGINT NOT NULL              -- seq_gaps includes every reading up to this id
);
