"""The materialised latest state of each tracker: last seen, latest fix, latest seal report.

Kept in the `trackers` table (columns in storage/migrations/0001_base.sql) by `ReadingStore.insert`, in the
transaction that stores the readings, so it is exactly as durable as they are. Per batch, the per-tracker
maxima are folded in Python, then one UPSERT per tracker moves each part forward only: event time (ts, then
seq) decides, so a late, older reading never overwrites a newer state, and the result is what
`ReadingStore.latest`, `latest_fix` and `last_seal` return from the track.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from devices.reading import Reading, SealState
from storage import Connection, Dialect

# Whether the batch's part is newer than the stored one, in the (ts, seq) order of the track.
_NEWER_FIX = (
    "excluded.fix_ts IS NOT NULL AND (trackers.fix_ts IS NULL"
    " OR (excluded.fix_ts, excluded.fix_seq) > (trackers.fix_ts, trackers.fix_seq))"
)
_NEWER_SEAL = (
    "excluded.seal_ts IS NOT NULL AND (trackers.seal_ts IS NULL"
    " OR (excluded.seal_ts, excluded.seal_seq) > (trackers.seal_ts, trackers.seal_seq))"
)
_NEWER_SEEN = "trackers.last_seen IS NULL OR excluded.last_seen > trackers.last_seen"
_FIX_COLUMNS = ("fix_ts", "fix_seq", "fix_lat", "fix_lon", "fix_acc", "fix_spd", "fix_hdg", "fix_bat")
_SEAL_COLUMNS = ("seal", "seal_ts", "seal_seq")


def _set(columns: Iterable[str], newer: str) -> str:
    # Every right-hand side reads the row as it was before this UPDATE, so the conditions stay consistent.
    return ", ".join(f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE trackers.{c} END" for c in columns)


UPSERT = (
    "INSERT INTO trackers (tracker_id, created_at, last_seen, "
    + ", ".join(_FIX_COLUMNS + _SEAL_COLUMNS)
    + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tracker_id) DO UPDATE SET "
    + f"last_seen = CASE WHEN {_NEWER_SEEN} THEN excluded.last_seen ELSE trackers.last_seen END, "
    + _set(_FIX_COLUMNS, _NEWER_FIX)
    + ", "
    + _set(_SEAL_COLUMNS, _NEWER_SEAL)
    # A batch that is older in every part (a late backlog) leaves the row untouched: no write at all.
    + f" WHERE ({_NEWER_SEEN}) OR ({_NEWER_FIX}) OR ({_NEWER_SEAL})"
)

# PostgreSQL: the whole batch in one statement, its rows as one array per column (see advance()).
_TYPES = ("text", "float8", "float8", "float8", "int8", *("float8",) * 6, "text", "float8", "int8")
UPSERT_ARRAYS = (
    UPSERT[: UPSERT.index("VALUES")]
    + "SELECT * FROM unnest("
    + ", ".join(f"?::{t}[]" for t in _TYPES)
    + ") "
    + UPSERT[UPSERT.index("ON CONFLICT") :]
)

STATE_COLUMNS = "tracker_id, last_seen, " + ", ".join(_FIX_COLUMNS + _SEAL_COLUMNS)


@dataclass(frozen=True, slots=True)
class TrackerState:
    """What the track says about one tracker now."""

    tracker_id: str
    last_seen: float | None  # time of the latest reading
    fix: Reading | None  # the latest reading with a usable position (its fix fields only)
    seal: tuple[SealState, float] | None  # (state, ts) of the latest reading that reported the seal


def fold(readings: Iterable[Reading], now: float) -> list[tuple[Any, ...]]:
    """UPSERT rows: per tracker, its latest reading time, latest fix and latest seal report in `readings`.

    `readings` must not repeat a (tracker, ts, seq): they are the new ones ReadingStore.insert stored.
    """
    # tracker -> [last_seen, fix key, fix reading, seal key, seal reading]
    acc: dict[str, list[Any]] = {}
    for r in readings:
        key = (r.ts, -1 if r.seq is None else r.seq)
        s = acc.get(r.tracker_id)
        if s is None:
            s = acc[r.tracker_id] = [r.ts, None, None, None, None]
        elif r.ts > s[0]:
            s[0] = r.ts
        if r.has_position and (s[1] is None or key > s[1]):
            s[1], s[2] = key, r
        if r.seal is not None and (s[3] is None or key > s[3]):
            s[3], s[4] = key, r
    rows: list[tuple[Any, ...]] = []
    for tracker_id, (last_seen, fix_key, f, seal_key, z) in acc.items():
        fix: tuple[Any, ...] = (
            (fix_key[0], fix_key[1], f.lat, f.lon, f.acc, f.spd, f.hdg, f.bat) if f is not None else (None,) * 8
        )
        seal = (z.seal, seal_key[0], seal_key[1]) if z is not None else (None, None, None)
        rows.append((tracker_id, now, last_seen, *fix, *seal))
    return rows


def advance(conn: Connection, readings: Iterable[Reading], now: float, dialect: Dialect = "sqlite") -> int:
    """Move the stored state forward by newly stored readings, inside the caller's write transaction.

    Creates the registry row of a tracker seen for the first time (created_at = now). Returns the number
    of trackers in the batch. On SQLite an executemany (a C loop) is fastest; on PostgreSQL one statement
    over arrays is (a statement per tracker costs a round of server work each: benchmarks/storage_ingest.py).
    """
    rows = fold(readings, now)
    if rows and dialect == "postgres":
        conn.execute(UPSERT_ARRAYS, [list(column) for column in zip(*rows, strict=True)])
    elif rows:
        conn.executemany(UPSERT, rows)
    return len(rows)


def state_from_row(r: Any) -> TrackerState:
    """A TrackerState from the columns in STATE_COLUMNS order."""
    fix = None
    if r[2] is not None:
        fix = Reading(r[0], r[2], r[4], r[5], None if r[3] < 0 else r[3], r[6], r[7], r[8], r[9])
    seal = (r[10], r[11]) if r[11] is not None else None
    return TrackerState(r[0], r[1], fix, seal)


def read_state(conn: Connection, tracker_id: str) -> TrackerState | None:
    """The stored state of one tracker; None for a tracker with no registry row."""
    r = conn.execute(f"SELECT {STATE_COLUMNS} FROM trackers WHERE tracker_id = ?", (tracker_id,)).fetchone()
    return None if r is None else state_from_row(r)
