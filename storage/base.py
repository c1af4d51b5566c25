"""What every storage backend offers the stages: per-thread connections and write transactions.

The stages write their SQL in the subset that SQLite and PostgreSQL share (``?`` placeholders,
``ON CONFLICT``, ``RETURNING``); a backend adapts what little differs. The schema lives in
``storage/migrations/`` and is applied by ``storage.migrate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgres"]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...
    @property
    def rowcount(self) -> int: ...


class Connection(Protocol):
    """The part of a DB-API connection the stages use. Rows answer both ``row[0]`` and ``row["name"]``.
    Errors are ``storage.errors``' classes, whatever the backend."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Any, /) -> Any: ...
    def cursor(self) -> Any: ...
    def plain_cursor(self) -> Any:
        """A cursor whose rows are plain tuples: for queries that return many rows."""
        ...
    @property
    def in_transaction(self) -> bool: ...


class Database(Protocol):
    """A store the stages share. ``conn()`` is this thread's connection (autocommit outside ``write()``)."""

    dialect: Dialect
    #: where the data lives, for messages (a file path, or a URL without its password)
    location: str

    #: the migration versions this open applied (empty when the schema was up to date)
    applied: list[int]
    #: appended to a SELECT inside ``write()`` that reads rows it will change: " FOR UPDATE" on PostgreSQL,
    #: where writers run side by side; "" on SQLite, where the write transaction already excludes the others
    row_lock: str

    def conn(self) -> Any: ...
    def connect(self) -> Any: ...
    def write(self) -> AbstractContextManager[Any]:
        """One write transaction on ``conn()``; writers are serialised (SQLite) or row-locked (PostgreSQL)."""
        ...
    def read(self) -> AbstractContextManager[Any]:
        """One consistent read snapshot on ``conn()`` for several queries (joins the transaction already
        open on it, if any)."""
        ...
    def close(self) -> None: ...
