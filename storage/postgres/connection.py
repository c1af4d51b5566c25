"""psycopg connections that run the stages' SQL unchanged: ``?`` placeholders, rows by index and by name,
and ``storage.errors`` instead of psycopg's exceptions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg_pool import PoolTimeout

from storage import errors


def map_error(e: Exception) -> errors.StorageError:
    # A trigger's RAISE EXCEPTION guards data the way a constraint does (the append-only audit log).
    if isinstance(e, pg_errors.IntegrityError | pg_errors.RaiseException):
        return errors.IntegrityError(str(e))
    if isinstance(e, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout):
        return errors.OperationalError(str(e))
    return errors.StorageError(str(e))


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``?`` placeholders to ``%s`` outside quotes and comments; a literal ``%`` becomes ``%%``."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":  # a quoted literal or identifier ('' and "" escape themselves)
            j = sql.find(ch, i + 1)
            j = n if j < 0 else j + 1
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif ch == "?":
            out.append("%s")
            i += 1
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class Row(tuple[Any, ...]):
    """A result row that answers ``row[0]`` and ``row["name"]``, like ``sqlite3.Row`` (and is a tuple)."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)  # the first of equal names, as sqlite3.Row does
    return type("Row", (Row,), {"__slots__": (), "_index": index})


def kawal_row(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    """psycopg row factory making ``Row`` objects."""
    desc = cursor.description
    if desc is None:
        return tuple
    return _row_class(tuple(d.name for d in desc))


class PgCursor(psycopg.Cursor[Any]):
    def execute(  # type: ignore[override]
        self, query: str, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> PgCursor:
        try:
            # Always with parameters (maybe none), so psycopg reads the %% that translate() wrote.
            super().execute(translate(query), () if params is None else params, prepare=prepare, binary=binary)
        except psycopg.Error as e:
            raise map_error(e) from e
        return self

    def executemany(  # type: ignore[override]
        self, query: str, params_seq: Iterable[Any], *, returning: bool = False
    ) -> None:
        try:
            super().executemany(translate(query), params_seq, returning=returning)
        except psycopg.Error as e:
            raise map_error(e) from e


class PgConnection(psycopg.Connection[Any]):
    """A psycopg connection with the few extras the stages use on SQLite's."""

    def executemany(self, query: str, params_seq: Iterable[Any], *, returning: bool = False) -> PgCursor:
        """As ``sqlite3.Connection.executemany``: psycopg 3 sends the statements in one pipeline."""
        cur: PgCursor = self.cursor()  # type: ignore[assignment]
        cur.executemany(query, params_seq, returning=returning)
        return cur

    def plain_cursor(self) -> PgCursor:
        cur: PgCursor = self.cursor(row_factory=tuple_row)  # type: ignore[assignment]
        return cur

    @property
    def in_transaction(self) -> bool:
        return self.info.transaction_status != TransactionStatus.IDLE
