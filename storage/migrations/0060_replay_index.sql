-- The spoofing detector's replay index (anomaly/replay.py): runs of quantised fixes seen before, so that a
-- replay of a track recorded before a restart is still recognised. One row, replaced on each save.
CREATE TABLE IF NOT EXISTS replay_index (
    id       BIGINT PRIMARY KEY,
    state    {blob} NOT NULL,
    saved_at DOUBLE PRECISION NOT NULL
);
