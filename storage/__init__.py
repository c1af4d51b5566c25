"""Storage: the schema (``migrations/``), its runner, and one package per kind of backend.

``open_database(target)`` opens SQLite for a path (the embedded default) and PostgreSQL for a
``postgresql://`` URL.
"""

from __future__ import annotations

from pathlib import Path

from storage.base import Connection, Cursor, Database, Dialect
from storage.errors import IntegrityError, OperationalError, StorageError

__all__ = [
    "Connection",
    "Cursor",
    "Database",
    "Dialect",
    "IntegrityError",
    "OperationalError",
    "StorageError",
    "is_url",
    "open_database",
]


def is_url(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def open_database(target: str | Path, check: bool = False) -> Database:
    """The store named by ``KAWAL_DB``: a SQLite file path, or a ``postgresql://`` URL. With `check`, a SQLite
    file is checked first and a damaged one refused (``storage.sqlite.check.DatabaseDamaged``)."""
    if is_url(target):
        from storage.postgres import PostgresDatabase

        return PostgresDatabase(str(target))
    from storage.sqlite import SqliteDatabase

    if check:
        from storage.sqlite.check import ensure_sound

        ensure_sound(Path(target))
    return SqliteDatabase(target)
