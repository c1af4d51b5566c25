"""SQLite connections and cursors that raise ``storage.errors`` instead of ``sqlite3``'s exceptions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from storage import errors


def map_error(e: sqlite3.Error) -> errors.StorageError:
    if isinstance(e, sqlite3.IntegrityError):
        return errors.IntegrityError(str(e))
    if isinstance(e, sqlite3.OperationalError):
        return errors.OperationalError(str(e))
    if "malformed" in str(e) or "not a database" in str(e):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return errors.CorruptError(str(e))
    return errors.StorageError(str(e))


class SqliteCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> SqliteCursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as e:
            raise map_error(e) from e

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> SqliteCursor:
        try:
            return super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as e:
            raise map_error(e) from e


class SqliteConnection(sqlite3.Connection):
    """``sqlite3.Connection`` with storage errors. (Its own ``execute`` would bypass an overridden
    ``cursor``, so both are overridden.)"""

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or SqliteCursor)

    def plain_cursor(self) -> SqliteCursor:
        """A cursor whose rows are plain tuples (cheaper than ``sqlite3.Row`` for many rows)."""
        cur: SqliteCursor = self.cursor()
        cur.row_factory = None
        return cur

    def execute(self, sql: str, parameters: Any = (), /) -> SqliteCursor:
        cur: SqliteCursor = self.cursor()
        return cur.execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> SqliteCursor:
        cur: SqliteCursor = self.cursor()
        return cur.executemany(sql, seq_of_parameters)
