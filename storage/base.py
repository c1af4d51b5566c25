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
    """The part of a DB-API connection the stages use. Rows answer both ``row[0]`` and ``row["name"]``."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, params: Any, /) -> Any: ...


class Database(Protocol):
    """A store the stages share. ``conn()`` is this thread's connection (autocommit outside ``write()``)."""

    dialect: Dialect
    #: where the data lives, for messages (a file path, or a URL without its password)
    location: str

    def conn(self) -> Any: ...
    def connect(self) -> Any: ...
    def write(self) -> AbstractContextManager[Any]: ...
    def close(self) -> None: ...
