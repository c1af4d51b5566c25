"""The store-and-forward queue: every reading is written here first and leaves only after its PUBACK.

SQLite in WAL mode with synchronous=FULL: each reading is one committed transaction, fsynced before the
agent goes on, so a power cut at any moment loses at most the reading being written. The reading's `seq`
comes from the same transaction, so a reboot neither repeats nor skips one.

The queue is bounded: when it is full, the oldest readings are dropped to make room (the newest position
matters most to a crate's watchers). Drops are counted in the database, logged, and the running total is
sent in every later reading as the extra field `dropped` (CONTRACT 1.1 keeps unknown fields).
A reading that was already on its way when it was dropped may still arrive: the count is an upper bound.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('next_seq', 0), ('dropped', 0);
"""


class ReadingQueue:
    def __init__(self, path: Path, max_size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_size = max_size
        # One connection, shared under a lock: the agent writes, a status reader may look from another thread.
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def _meta(self, key: str) -> int:
        with self.lock:
            return int(self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    @property
    def next_seq(self) -> int:
        return self._meta("next_seq")

    @property
    def dropped(self) -> int:
        return self._meta("dropped")

    def size(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT count(*) FROM readings").fetchone()[0])

    def add(self, reading: dict[str, Any]) -> dict[str, Any]:
        """Number the reading, make room if full, store it durably; returns it with `seq` (and `dropped`)."""
        with self.lock:
            return self._add(reading)

    def _add(self, reading: dict[str, Any]) -> dict[str, Any]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            excess = self.size() - self.max_size + 1
            dropped = self._meta("dropped")
            if excess > 0:
                self.db.execute(
                    "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)", (excess,)
                )
                dropped += excess
                self.db.execute("UPDATE meta SET value = ? WHERE key = 'dropped'", (dropped,))
            seq = self._meta("next_seq")
            body = {**reading, "seq": seq}
            if dropped:
                body["dropped"] = dropped
            self.db.execute("INSERT INTO readings (body) VALUES (?)", (json.dumps(body, separators=(",", ":")),))
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (seq + 1,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if excess > 0:
            log.warning("queue full (%d readings): dropped the %d oldest, %d in all", self.max_size, excess, dropped)
        return body

    def peek(self, after_id: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` readings after `after_id`, oldest first, as (id, JSON text)."""
        with self.lock:
            rows = self.db.execute(
                "SELECT id, body FROM readings WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [(int(i), str(b)) for i, b in rows]

    def remove(self, first_id: int, last_id: int) -> None:
        """Forget readings first_id..last_id (one published message), once the broker has acknowledged it."""
        with self.lock:
            self.db.execute("DELETE FROM readings WHERE id BETWEEN ? AND ?", (first_id, last_id))

    def close(self) -> None:
        with self.lock:
            self.db.close()
