-- Notifications (CONTRACT 2.7): channels, the durable outbox of deliveries, escalations, and the lease
-- that lets one process at a time send a channel's deliveries.

-- A webhook or email channel; `body` is the channel as JSON (with its secret, never returned by the API).
CREATE TABLE IF NOT EXISTS notify_channels (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL
);

-- One row per (channel, event): written in the transaction of the alert change (or escalation), sent in
-- id order per channel, kept after delivery so the dashboard can show where an alert went.
CREATE TABLE IF NOT EXISTS notify_outbox (
    id           {serial},
    channel      TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event        TEXT NOT NULL,                -- alert.raised, alert.updated or alert.escalated
    alert_id     TEXT NOT NULL,
    body         TEXT NOT NULL,                -- the webhook body exactly as signed and sent
    context      TEXT NOT NULL DEFAULT '{}',   -- what an email needs beyond the alert (trip destination)
    status       TEXT NOT NULL,                -- pending, delivered
    attempts     BIGINT NOT NULL DEFAULT 0,
    created_at   DOUBLE PRECISION NOT NULL,
    next_at      DOUBLE PRECISION NOT NULL,
    delivered_at DOUBLE PRECISION,
    last_error   TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS notify_outbox_event ON notify_outbox (channel, event_id);
CREATE INDEX IF NOT EXISTS notify_outbox_pending ON notify_outbox (channel, status, id);
CREATE INDEX IF NOT EXISTS notify_outbox_alert ON notify_outbox (alert_id, id);

-- Alerts each channel's escalation has looked at (sent or not matching): an alert escalates at most once.
CREATE TABLE IF NOT EXISTS notify_escalations (
    channel     TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    sent        BIGINT NOT NULL,
    PRIMARY KEY (channel, alert_id)
);

-- Which process sends a channel's deliveries, until when (several workers share one database).
CREATE TABLE IF NOT EXISTS notify_leases (
    channel     TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    until       DOUBLE PRECISION NOT NULL
);
