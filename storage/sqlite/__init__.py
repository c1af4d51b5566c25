"""The embedded backend: one SQLite file, WAL mode, one connection per thread."""

from storage.sqlite.database import SqliteDatabase

__all__ = ["SqliteDatabase"]
