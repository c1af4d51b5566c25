"""Files made before the migrations existed: bring their trackers table up to the base schema.

Migration 0001 creates every table with ``IF NOT EXISTS``, so on a file from the first release it leaves the old
``trackers`` table as it was. This adds the latest-state columns and derives their values from the readings.
"""

from __future__ import annotations

import sqlite3

# Columns of the trackers table added after the first release. A file created before them gets them on
# open (ALTER TABLE ... ADD COLUMN), then TRACKER_STATE_BACKFILL derives their values from the readings.
TRACKER_STATE_COLUMNS = (
    ("last_seen", "REAL"),
    ("fix_ts", "REAL"),
    ("fix_seq", "INTEGER"),
    ("fix_lat", "REAL"),
    ("fix_lon", "REAL"),
    ("fix_acc", "REAL"),
    ("fix_spd", "REAL"),
    ("fix_hdg", "REAL"),
    ("fix_bat", "REAL"),
    ("seal", "TEXT"),
    ("seal_ts", "REAL"),
    ("seal_seq", "INTEGER"),
)

# One statement: per tracker, max(ts), and the rows of its latest fix and latest seal report found by
# walking the readings_dedup index backwards. Trackers without a registry row get one.
TRACKER_STATE_BACKFILL = """
INSERT INTO trackers (tracker_id, created_at, last_seen, fix_ts, fix_seq, fix_lat, fix_lon, fix_acc, fix_spd,
                      fix_hdg, fix_bat, seal, seal_ts, seal_seq)
SELECT s.tracker_id, s.first_received, s.last_seen, f.ts, f.seq, f.lat, f.lon, f.acc, f.spd, f.hdg, f.bat,
       z.seal, z.ts, z.seq
FROM (SELECT tracker_id, max(ts) AS last_seen, min(received_at) AS first_received
      FROM readings GROUP BY tracker_id) AS s
LEFT JOIN readings AS f ON f.id = (
    SELECT id FROM readings WHERE tracker_id = s.tracker_id
    AND lat IS NOT NULL AND lon IS NOT NULL AND NOT (lat = 0 AND lon = 0)
    ORDER BY ts DESC, seq DESC LIMIT 1)
LEFT JOIN readings AS z ON z.id = (
    SELECT id FROM readings WHERE tracker_id = s.tracker_id AND seal IS NOT NULL
    ORDER BY ts DESC, seq DESC LIMIT 1)
WHERE true
ON CONFLICT (tracker_id) DO UPDATE SET
    last_seen = excluded.last_seen, fix_ts = excluded.fix_ts, fix_seq = excluded.fix_seq,
    fix_lat = excluded.fix_lat, fix_lon = excluded.fix_lon, fix_acc = excluded.fix_acc,
    fix_spd = excluded.fix_spd, fix_hdg = excluded.fix_hdg, fix_bat = excluded.fix_bat,
    seal = excluded.seal, seal_ts = excluded.seal_ts, seal_seq = excluded.seal_seq
"""


def add_tracker_state(conn: sqlite3.Connection) -> None:
    """Upgrade a file from before the tracker state: add the columns and backfill them, in one transaction
    (so a crash or a second process opening the file at the same time cannot leave half of it)."""

    def missing() -> list[tuple[str, str]]:
        have = {str(r[1]) for r in conn.execute("PRAGMA table_info(trackers)")}
        return [(c, d) for c, d in TRACKER_STATE_COLUMNS if c not in have]

    if not missing():
        return  # the usual case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        todo = missing()  # again, under the lock: another process may have upgraded meanwhile
        for column, decl in todo:
            conn.execute(f"ALTER TABLE trackers ADD COLUMN {column} {decl}")
        if todo:
            conn.execute(TRACKER_STATE_BACKFILL)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


