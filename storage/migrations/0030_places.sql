-- Places on alerts (CONTRACT 2.3, version 2; kawal/places.py). `place` is the Place as JSON, the text 'null'
-- when the position lies outside every known area, and NULL when no place was computed (no position, or an
-- alert stored before this migration: the service fills those in when it starts). `kecamatan` repeats the
-- kecamatan's name for the ?kecamatan= filter and the counts per kecamatan.
ALTER TABLE alerts ADD COLUMN kecamatan TEXT;
ALTER TABLE alerts ADD COLUMN place TEXT;
CREATE INDEX IF NOT EXISTS alerts_kecamatan ON alerts (kecamatan, status);
