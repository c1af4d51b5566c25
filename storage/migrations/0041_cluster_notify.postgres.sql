-- Every worker hears of alert changes (for its live stream) and trip changes (for the partition owner's
-- detector) at once, whichever worker or command wrote them: NOTIFY is delivered at commit.
CREATE OR REPLACE FUNCTION kawal_notify_alert_event() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('kawal_alerts', NEW.event_id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS alert_events_notify ON alert_events;
CREATE TRIGGER alert_events_notify AFTER INSERT ON alert_events
    FOR EACH ROW EXECUTE FUNCTION kawal_notify_alert_event();

CREATE OR REPLACE FUNCTION kawal_notify_trip() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('kawal_trips', NEW.trip_id);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS trips_notify ON trips;
CREATE TRIGGER trips_notify AFTER INSERT OR UPDATE ON trips
    FOR EACH ROW EXECUTE FUNCTION kawal_notify_trip();
