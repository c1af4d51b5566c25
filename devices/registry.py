"""The tracker registry: which trackers exist, their last MQTT status, and which crate each is fixed to."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from kawal.trips import ID_RE
from storage import Connection, Database


def _row(r: Any) -> dict[str, Any]:
    return {
        "tracker_id": r["tracker_id"],
        "crate_id": r["crate_id"],
        "status": r["status"],
        "status_at": r["status_at"],
        "created_at": r["created_at"],
    }


class TrackerRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure(self, conn: Connection, tracker_ids: Iterable[str], now: float) -> None:
        """Register trackers (provisioning), inside the caller's transaction; known ones are unchanged."""
        rows = [(t, now) for t in set(tracker_ids)]
        conn.executemany(
            "INSERT INTO trackers (tracker_id, created_at) VALUES (?, ?) ON CONFLICT (tracker_id) DO NOTHING", rows
        )

    def set_status(self, conn: Connection, tracker_id: str, status: str, at: float) -> None:
        """Record an online/offline status message, inside the caller's transaction."""
        conn.execute(
            "INSERT INTO trackers (tracker_id, status, status_at, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (tracker_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at",
            (tracker_id, status, at, at),
        )

    def assign(self, tracker_id: str, crate_id: str | None, now: float | None = None) -> None:
        """Fix a tracker to a crate (None detaches it). Creates the tracker if needed."""
        for value, what in ((tracker_id, "tracker_id"), (crate_id, "crate_id")):
            if value is not None and ID_RE.fullmatch(value) is None:
                raise ValueError(f"{what} must match [A-Za-z0-9._-]{{1,64}}: {value!r}")
        at = time.time() if now is None else now
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO trackers (tracker_id, crate_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (tracker_id) DO UPDATE SET crate_id = excluded.crate_id",
                (tracker_id, crate_id, at),
            )

    def get(self, tracker_id: str) -> dict[str, Any] | None:
        r = self.db.conn().execute("SELECT * FROM trackers WHERE tracker_id = ?", (tracker_id,)).fetchone()
        return None if r is None else _row(r)

    def by_crate(self, crate_id: str) -> dict[str, Any] | None:
        """The tracker fixed to this crate, if any."""
        r = (
            self.db.conn()
            .execute("SELECT * FROM trackers WHERE crate_id = ? ORDER BY tracker_id LIMIT 1", (crate_id,))
            .fetchone()
        )
        return None if r is None else _row(r)

    def list(self) -> list[dict[str, Any]]:
        return [_row(r) for r in self.db.conn().execute("SELECT * FROM trackers ORDER BY tracker_id")]
