-- An alert the detectors resolved keeps the event time of that resolution, so a condition that returns within
-- the hold-off (anomaly/config.py ALERT_REOPEN_HOLD_OFF_S) reopens the same alert instead of a new one.
-- NULL: unresolved, or resolved by a person (never reopened by the detectors).
ALTER TABLE alerts ADD COLUMN auto_resolved_ts DOUBLE PRECISION;
-- The latest alert of a tracker and type, looked up on every raise that finds none unresolved.
CREATE INDEX IF NOT EXISTS alerts_tracker_type ON alerts (tracker_id, type, updated_at);
