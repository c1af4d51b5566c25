-- Detector state in slices that are saved in turn (kawal/detection.py), so no save stops ingest for the
-- whole fleet. reading_id: readings up to this id are reflected in the slice's states; round_reading_id:
-- the last reading stored when the slice's round began (the replay starts after the oldest of these).
CREATE TABLE IF NOT EXISTS detector_snapshots (
    shard            BIGINT PRIMARY KEY,
    reading_id       BIGINT NOT NULL,
    round_reading_id BIGINT NOT NULL,
    state            {blob} NOT NULL,
    saved_at         DOUBLE PRECISION NOT NULL
);
INSERT INTO detector_snapshots (shard, reading_id, round_reading_id, state, saved_at)
    SELECT 0, reading_id, reading_id, state, saved_at FROM detector_state;
DROP TABLE detector_state;
