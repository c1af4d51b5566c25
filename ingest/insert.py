"""How a batch of readings goes into the track on each backend, and which of them were new.

Both insert with ``ON CONFLICT (tracker_id, ts, seq) DO NOTHING`` (the readings_dedup index), so a
duplicate, also one within the batch, is stored once: the first in the batch. They differ in how they learn
which inputs were new, and in what is fast (measured in benchmarks/storage_ingest.py):

- SQLite: ``executemany`` (a C loop), then the change count; only when some were duplicates, the rows after
  the id read before, which are ours alone because the write transaction holds the only write lock.
- PostgreSQL: one ``INSERT ... SELECT * FROM unnest(arrays) ... RETURNING`` of the keys stored, so a
  batch costs one round trip (a busy machine makes each round trip dear). Right with concurrent writers
  too, whose ids interleave with ours. Per-row statements, even pipelined, cost server work per row; COPY
  into a staging table measured no faster, with more round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from devices.reading import Reading
from storage import Connection

COLUMNS = "tracker_id, ts, seq, lat, lon, acc, spd, hdg, bat, seal, extra"
_ALL = f"{COLUMNS}, received_at"
INSERT = (
    f"INSERT INTO readings ({_ALL}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (tracker_id, ts, seq) DO NOTHING"
)

# PostgreSQL: the whole batch in one statement, its rows as one array per column, in input order.
_TYPES = ("text", "float8", "int8", *("float8",) * 6, "text", "text", "float8")
_FROM_ARRAYS = (
    f"INSERT INTO readings ({_ALL}) SELECT * FROM unnest("
    + ", ".join(f"?::{t}[]" for t in _TYPES)
    + ") ON CONFLICT (tracker_id, ts, seq) DO NOTHING RETURNING tracker_id, ts, seq"
)


def _key(r: Reading) -> tuple[str, float, int]:
    return (r.tracker_id, r.ts, -1 if r.seq is None else r.seq)


def arrays_new(conn: Connection, readings: Sequence[Reading], rows: list[tuple[Any, ...]]) -> list[Reading]:
    """PostgreSQL: store `rows` (the readings' column values); return the readings that were new, in order."""
    stored = conn.execute(_FROM_ARRAYS, [list(column) for column in zip(*rows, strict=True)]).fetchall()
    if len(stored) == len(readings):
        return list(readings)
    keys = {(k[0], k[1], k[2]) for k in stored}
    out: list[Reading] = []
    for r in readings:
        k = _key(r)
        if k in keys:  # the first of equal keys in the batch is the one stored
            keys.discard(k)
            out.append(r)
    return out


def count_new(conn: Connection, readings: Sequence[Reading], rows: list[tuple[Any, ...]]) -> list[Reading]:
    """SQLite: store `rows` (the readings' column values); return the readings that were new, in order."""
    sqlite = cast(Any, conn)
    before = sqlite.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
    changes = sqlite.total_changes
    sqlite.executemany(INSERT, rows)
    added = sqlite.total_changes - changes
    if added == len(readings):
        return list(readings)
    if added == 0:
        return []
    # Some were duplicates: the new rows are exactly the inputs whose insert took, in input order,
    # so walk both sequences side by side.
    new_keys = sqlite.execute("SELECT tracker_id, ts, seq FROM readings WHERE id > ? ORDER BY id", (before,)).fetchall()
    out: list[Reading] = []
    i = 0
    for r in readings:
        if i < len(new_keys) and _key(r) == tuple(new_keys[i]):
            out.append(r)
            i += 1
    return out
