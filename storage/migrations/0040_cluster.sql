-- Cluster mode (CONTRACT 3.1). The engine's stream is cut into partitions by tracker; a worker owns a
-- partition while it holds the partition's advisory lock (cluster/leases.py). Its detection state is
-- kept here with the stream sequence it reflects, so the next owner resumes from it plus a replay.
CREATE TABLE IF NOT EXISTS cluster_partitions (
    part        BIGINT PRIMARY KEY,
    stream_seq  BIGINT NOT NULL DEFAULT 0,     -- the stream's messages up to this one are in `state`
    state       {blob},                        -- the partition's detector snapshot, NULL before the first
    saved_at    DOUBLE PRECISION,
    owner       TEXT                           -- the worker that saved it (for operators)
);

-- Workers that joined; a worker is alive while the database session `backend_pid` holds its lock.
CREATE TABLE IF NOT EXISTS cluster_workers (
    worker_id   TEXT PRIMARY KEY,
    backend_pid BIGINT NOT NULL,
    http_url    TEXT,
    started_at  DOUBLE PRECISION NOT NULL
);

-- The event clock shared by the workers (KAWAL_CLOCK=event): the latest reading time any of them saw.
CREATE TABLE IF NOT EXISTS cluster_clock (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    ts          DOUBLE PRECISION NOT NULL
);

-- An episode of an alert is (tracker, type, ts): a replay after a failover recognises one already raised.
CREATE INDEX IF NOT EXISTS alerts_episode ON alerts (tracker_id, type, ts);
