-- A signed handover is never changed or removed through SQL; editing rows by other means is what
-- `kawal audit verify` catches (the row no longer matches its audit record).
CREATE OR REPLACE FUNCTION kawal_handovers_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'handovers are append-only';
END;
$$;
DROP TRIGGER IF EXISTS handovers_no_update ON handovers;
CREATE TRIGGER handovers_no_update BEFORE UPDATE OR DELETE ON handovers
    FOR EACH ROW EXECUTE FUNCTION kawal_handovers_append_only();
ALTER TABLE handovers ALTER COLUMN trip_id TYPE TEXT COLLATE "C";
ALTER TABLE handovers ALTER COLUMN crate_id TYPE TEXT COLLATE "C";
ALTER TABLE trips ALTER COLUMN previous_trip_id TYPE TEXT COLLATE "C";
