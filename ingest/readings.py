"""The track: every valid reading stored once, and rejected payloads for operators."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from devices.decode import Rejection
from devices.reading import Reading
from ingest import insert, latest
from ingest.insert import COLUMNS as _COLUMNS
from ingest.latest import TrackerState
from storage import Connection, Database

MAX_REJECTED_PAYLOAD = 4096


def truncate_payload(raw: bytes) -> bytes:
    """The first 4 KiB, cut on a character boundary when the payload is UTF-8 text (so it stays text)."""
    cut = bytes(raw[:MAX_REJECTED_PAYLOAD])
    if len(raw) > MAX_REJECTED_PAYLOAD:
        try:
            cut.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data":
                cut = cut[: e.start]
    return cut


# A usable fix: both coordinates, and not Null Island (Reading.has_position).
_HAS_POSITION = "lat IS NOT NULL AND lon IS NOT NULL AND NOT (lat = 0 AND lon = 0)"


def _extra_json(extra: dict[str, Any] | None) -> str | None:
    if not extra:
        return None
    # ensure_ascii keeps lone surrogates a JSON parser may let through encodable for SQLite.
    return json.dumps(extra, separators=(",", ":"), allow_nan=True, default=str)


def reading_from_row(r: Sequence[Any]) -> Reading:
    """A Reading from the columns in `_COLUMNS` order."""
    seq = r[2]
    extra = r[10]
    return Reading(
        r[0],
        r[1],
        r[3],
        r[4],
        None if seq < 0 else seq,
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        None if extra is None else json.loads(extra),
    )


class ReadingStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes, inside the caller's transaction -----------------------------------------------------------

    def insert(
        self, conn: Connection, readings: Sequence[Reading], received_at: float
    ) -> list[Reading]:
        """Store readings; return only those not stored before, in input order.

        Duplicates (same tracker, ts and seq, by the readings_dedup index) are ignored, also within the
        batch. Must run inside a write transaction so the id range read back is ours alone. The trackers'
        latest state (ingest/latest.py) moves forward in the same transaction.
        """
        new = self._insert_rows(conn, readings, received_at)
        if new:
            self.advance_state(conn, new, received_at)
        return new

    def advance_state(self, conn: Connection, new: Sequence[Reading], received_at: float) -> None:
        """Fold newly stored readings into the trackers' latest state (one UPSERT per tracker)."""
        latest.advance(conn, new, received_at, self.db.dialect)

    def _insert_rows(self, conn: Connection, readings: Sequence[Reading], received_at: float) -> list[Reading]:
        if not readings:
            return []
        rows = [
            (
                r.tracker_id,
                r.ts,
                -1 if r.seq is None else r.seq,
                r.lat,
                r.lon,
                r.acc,
                r.spd,
                r.hdg,
                r.bat,
                r.seal,
                _extra_json(r.extra),
                received_at,
            )
            for r in readings
        ]
        if self.db.dialect == "postgres":
            return insert.arrays_new(conn, readings, rows)
        return insert.count_new(conn, readings, rows)

    def add_rejections(
        self, conn: Connection, topic: str, rejections: Sequence[Rejection], received_at: float
    ) -> None:
        """Keep rejected payloads (truncated to 4 KiB) with their reason, inside the caller's transaction."""
        if rejections:
            conn.executemany(
                "INSERT INTO rejected (received_at, topic, reason, detail, payload) VALUES (?, ?, ?, ?, ?)",
                [
                    (received_at, topic, j.reason, j.detail, truncate_payload(j.raw))
                    for j in rejections
                ],
            )

    # -- reads ---------------------------------------------------------------------------------------------

    def track(
        self, tracker_id: str, since: float | None = None, until: float | None = None, limit: int = 10000
    ) -> list[Reading]:
        """Readings with a usable position, in time order."""
        sql = f"SELECT {_COLUMNS} FROM readings WHERE tracker_id = ? AND {_HAS_POSITION}"
        args: list[Any] = [tracker_id]
        if since is not None:
            sql += " AND ts >= ?"
            args.append(since)
        if until is not None:
            sql += " AND ts <= ?"
            args.append(until)
        sql += " ORDER BY ts, seq LIMIT ?"
        args.append(limit)
        return [reading_from_row(r) for r in self.db.conn().execute(sql, args)]

    def _last(self, tracker_id: str, where: str = "") -> Reading | None:
        r = (
            self.db.conn()
            .execute(
                f"SELECT {_COLUMNS} FROM readings WHERE tracker_id = ? {where} "
                "ORDER BY ts DESC, seq DESC LIMIT 1",
                (tracker_id,),
            )
            .fetchone()
        )
        return None if r is None else reading_from_row(r)

    def latest(self, tracker_id: str) -> Reading | None:
        """The reading with the latest event time."""
        return self._last(tracker_id)

    def latest_fix(self, tracker_id: str) -> Reading | None:
        """The latest reading with a usable position."""
        return self._last(tracker_id, f"AND {_HAS_POSITION}")

    def last_seal(self, tracker_id: str) -> tuple[str, float] | None:
        """(seal state, ts) of the latest reading that reported the seal."""
        r = (
            self.db.conn()
            .execute(
                "SELECT seal, ts FROM readings WHERE tracker_id = ? AND seal IS NOT NULL "
                "ORDER BY ts DESC, seq DESC LIMIT 1",
                (tracker_id,),
            )
            .fetchone()
        )
        return None if r is None else (r[0], r[1])

    def state(self, tracker_id: str) -> TrackerState | None:
        """The tracker's materialised latest state: the same answers as latest / latest_fix / last_seal,
        from one row."""
        return latest.read_state(self.db.conn(), tracker_id)

    def count(self, tracker_id: str | None = None) -> int:
        if tracker_id is None:
            return int(self.db.conn().execute("SELECT count(*) FROM readings").fetchone()[0])
        return int(
            self.db.conn()
            .execute("SELECT count(*) FROM readings WHERE tracker_id = ?", (tracker_id,))
            .fetchone()[0]
        )

    def rejected(self, limit: int = 100) -> list[dict[str, Any]]:
        """Rejected payloads, newest first."""
        rows = self.db.conn().execute(
            "SELECT received_at, topic, reason, detail, payload FROM rejected ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {"received_at": r[0], "topic": r[1], "reason": r[2], "detail": r[3], "payload": bytes(r[4])}
            for r in rows
        ]

    def after_id(self, reading_id: int, limit: int) -> list[tuple[int, Reading]]:
        """Stored readings with id > reading_id, in storage order (replay, outboxes)."""
        cur = self.db.conn().plain_cursor()  # tuples: a restart's replay reads millions of rows
        cur.execute(f"SELECT id, {_COLUMNS} FROM readings WHERE id > ? ORDER BY id LIMIT ?", (reading_id, limit))
        return [(r[0], reading_from_row(r[1:])) for r in cur.fetchall()]

    def seq_keys_after(self, reading_id: int, limit: int) -> list[tuple[int, str, float, int]]:
        """(id, tracker_id, ts, seq) of stored readings with id > reading_id that carry a seq, in storage
        order. Plain rows: the sequence counter's replay at start reads every one of them."""
        cur = self.db.conn().plain_cursor()
        sql = "SELECT id, tracker_id, ts, seq FROM readings WHERE id > ? AND seq >= 0 ORDER BY id LIMIT ?"
        cur.execute(sql, (reading_id, limit))
        return cast(list[tuple[int, str, float, int]], cur.fetchall())

    def max_id(self) -> int:
        return int(self.db.conn().execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0])

    since_id = after_id  # the name docs/ARCHITECTURE.md uses

