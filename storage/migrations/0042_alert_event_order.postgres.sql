-- Live streams resume after an event id and skip ids they have passed, so ids must commit in id order. With
-- several writers (cluster workers, API threads) a change with a lower id could commit after a higher one
-- and be skipped by every stream. The id is therefore taken under a transaction-scoped lock: changes to
-- alerts commit one at a time, in id order. They are rare next to readings. (The identity default is
-- still drawn, and not used.)
CREATE OR REPLACE FUNCTION kawal_order_alert_event() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(19289, 3);
    -- under the lock the next id is the latest committed one plus one: dense, and in commit order
    NEW.event_id := (SELECT coalesce(max(event_id), 0) + 1 FROM alert_events);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS alert_events_order ON alert_events;
CREATE TRIGGER alert_events_order BEFORE INSERT ON alert_events
    FOR EACH ROW EXECUTE FUNCTION kawal_order_alert_event();
