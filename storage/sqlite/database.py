"""SQLite: the embedded default. One file in WAL mode, one connection per thread."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.base import Dialect
from storage.migrate import CREATE_TABLE, Migration, migrations
from storage.sqlite.connection import SqliteConnection
from storage.sqlite.legacy import add_tracker_state


def _statements(sql: str) -> list[str]:
    """Split a script where SQLite itself would (triggers keep their inner semicolons)."""
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if any(x.strip() and not x.strip().startswith("--") for x in buf.splitlines()):
        out.append(buf.strip())  # a last statement without its ";"
    return out


class SqliteDatabase:
    """Opens connections to one SQLite file. Connections are not shared between threads."""

    dialect: Dialect = "sqlite"
    row_lock = ""  # BEGIN IMMEDIATE already holds the only write lock

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._local = threading.local()
        self.applied: list[int] = []
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self.connect()
        try:
            self._migrate(conn)
        finally:
            conn.close()

    def connect(self) -> SqliteConnection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False, factory=SqliteConnection
        )
        # WAL is a property of the file: set once. Switching needs a lock that SQLite may refuse at once,
        # without its busy handler, while another process opens the same new file; so retry briefly.
        for attempt in range(50):
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        # NORMAL in WAL mode is durable against process crashes, which is what the contract promises.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.row_factory = sqlite3.Row
        return conn

    def conn(self) -> SqliteConnection:
        """This thread's own connection, opened on first use."""
        c: SqliteConnection | None = getattr(self._local, "conn", None)
        if c is None:
            c = self.connect()
            self._local.conn = c
        return c

    @contextmanager
    def write(self) -> Iterator[SqliteConnection]:
        """A write transaction on this thread's connection (BEGIN IMMEDIATE: no lock upgrades that race)."""
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[SqliteConnection]:
        """One read snapshot on this thread's connection (a deferred BEGIN takes no write lock)."""
        c = self.conn()
        if c.in_transaction:
            yield c
            return
        c.execute("BEGIN")
        try:
            yield c
        finally:
            c.execute("COMMIT")

    def close(self) -> None:
        c: SqliteConnection | None = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(CREATE_TABLE)
        done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
        for m in migrations(self.dialect):
            if m.version not in done and self._apply(conn, m):
                self.applied.append(m.version)
        add_tracker_state(conn)

    @staticmethod
    def _apply(conn: sqlite3.Connection, m: Migration) -> bool:
        """Apply one migration unless another process did meanwhile; True when this one applied it."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Again under the write lock: another process may have applied it meanwhile.
            todo = conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)).fetchone() is None
            if todo:
                for stmt in _statements(m.sql):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, time.time()),
                )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return todo
