-- Ids and names order byte by byte, as SQLite orders text, whatever the server's locale: lists sorted by
-- tracker, trip, crate or alert id come out the same on both backends (and compare faster).
ALTER TABLE readings ALTER COLUMN tracker_id TYPE TEXT COLLATE "C";
ALTER TABLE trackers ALTER COLUMN tracker_id TYPE TEXT COLLATE "C";
ALTER TABLE trackers ALTER COLUMN crate_id TYPE TEXT COLLATE "C";
ALTER TABLE trips ALTER COLUMN trip_id TYPE TEXT COLLATE "C";
ALTER TABLE trips ALTER COLUMN tracker_id TYPE TEXT COLLATE "C";
ALTER TABLE trips ALTER COLUMN crate_id TYPE TEXT COLLATE "C";
ALTER TABLE alerts ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE alerts ALTER COLUMN trip_id TYPE TEXT COLLATE "C";
ALTER TABLE alerts ALTER COLUMN crate_id TYPE TEXT COLLATE "C";
ALTER TABLE alerts ALTER COLUMN tracker_id TYPE TEXT COLLATE "C";
ALTER TABLE alert_events ALTER COLUMN alert_id TYPE TEXT COLLATE "C";
ALTER TABLE tokens ALTER COLUMN name TYPE TEXT COLLATE "C";
ALTER TABLE audit ALTER COLUMN subject TYPE TEXT COLLATE "C";
