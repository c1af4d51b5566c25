"""PostgreSQL: the shared store of several workers. psycopg 3 connections from one psycopg_pool pool."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from storage.base import Dialect
from storage.migrate import CREATE_TABLE, migrations
from storage.postgres.connection import PgConnection, PgCursor, kawal_row, map_error

# pg_advisory_lock key held while migrating, so workers that start at once apply each migration once.
# Advisory locks are per database: other databases on the server are not held up.
MIGRATION_LOCK = 0x6B6177616C  # "kawal"

_CONNECT: dict[str, Any] = {"autocommit": True, "row_factory": kawal_row, "cursor_factory": PgCursor}


def without_password(url: str) -> str:
    """The URL for messages and logs: the password, if any, left out."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    netloc = f"{userinfo.split(':', 1)[0]}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


def _give_back(pool: ConnectionPool[Any], conn: psycopg.Connection[Any]) -> None:
    try:
        pool.putconn(conn)
    except Exception:  # the pool is closed, or the connection is gone: nothing to return it to
        conn.close()


class _Lease:
    """A thread's connection from the pool; returned to the pool when the thread (and so this) ends."""

    def __init__(self, pool: ConnectionPool[Any], conn: PgConnection) -> None:
        self.conn = conn
        self.release = weakref.finalize(self, _give_back, pool, conn)


class PostgresDatabase:
    """Per-thread connections from a pool; every worker of a cluster opens one on the same database."""

    dialect: Dialect = "postgres"
    row_lock = " FOR UPDATE"  # writers run side by side: lock the rows a change is computed from

    def __init__(self, url: str, *, max_size: int = 20, timeout: float = 30.0) -> None:
        self.url = url
        self.location = without_password(url)
        self.applied: list[int] = []
        self._local = threading.local()
        self._migrate()
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url,
            connection_class=PgConnection,
            kwargs=_CONNECT,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            check=ConnectionPool.check_connection,
            name="kawal",
            open=True,
        )

    def connect(self) -> PgConnection:
        """A new connection of its own (autocommit); the caller closes it."""
        try:
            return PgConnection.connect(self.url, **_CONNECT)
        except psycopg.Error as e:
            raise map_error(e) from e

    def conn(self) -> PgConnection:
        """This thread's connection, taken from the pool on first use (and again after it broke)."""
        lease: _Lease | None = getattr(self._local, "lease", None)
        if lease is not None:
            c = lease.conn
            if not (c.closed or c.broken):
                return c
            lease.release()
        try:
            c = self._pool.getconn()
        except Exception as e:
            raise map_error(e) from e
        self._local.lease = _Lease(self._pool, c)
        return c

    @contextmanager
    def write(self) -> Iterator[PgConnection]:
        """One transaction on this thread's connection (READ COMMITTED; row locks order the writers)."""
        c = self.conn()
        try:
            with c.transaction():
                yield c
        except psycopg.Error as e:
            raise map_error(e) from e

    @contextmanager
    def read(self) -> Iterator[PgConnection]:
        """One REPEATABLE READ snapshot for several queries (or the transaction already open)."""
        c = self.conn()
        if c.in_transaction:
            yield c
            return
        try:
            with c.transaction():
                c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield c
        except psycopg.Error as e:
            raise map_error(e) from e

    def close(self) -> None:
        lease: _Lease | None = getattr(self._local, "lease", None)
        if lease is not None:
            lease.release()
            self._local.lease = None
        self._pool.close()

    def _migrate(self) -> None:
        """Apply the migrations not applied yet, under an advisory lock (one worker at a time)."""
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    conn.execute(CREATE_TABLE)
                    done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
                    for m in migrations(self.dialect):
                        if m.version in done:
                            continue
                        with conn.transaction():
                            conn.execute(m.sql)  # no parameters: several statements, % as written
                            conn.execute(
                                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                                (m.version, m.name, time.time()),
                            )
                        self.applied.append(m.version)
                finally:
                    if not conn.closed:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        except psycopg.Error as e:
            raise map_error(e) from e
