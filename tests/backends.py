"""The storage backends the storage suite runs on: SQLite (a file in tmp_path) and PostgreSQL (a fresh
database on the local server, dropped afterwards). Fixtures in tests/conftest.py.

PostgreSQL is at 127.0.0.1:5432 (user postgres, trust auth), or where KAWAL_TEST_PG points (a URL of a
database to connect to for CREATE DATABASE). Without a reachable server the postgres variants fail in CI
(CI=true) and are skipped elsewhere, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from storage import Database, open_database

PG_ADMIN_URL = os.environ.get("KAWAL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used for tests, or None when it can."""
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as c:
            c.execute("SELECT 1")
    except psycopg.Error as e:
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({str(e).strip()[:200]})"
    return None


def need_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem}: .ci/run starts it")
    pytest.skip(f"{problem}; start it (see .ci/run) to run the PostgreSQL variants")


def _url_for(name: str) -> str:
    return urlunsplit(urlsplit(PG_ADMIN_URL)._replace(path=f"/{name}"))


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database, kawal_test_<random>, as a URL; dropped (its connections ended) afterwards."""
    name = f"kawal_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _url_for(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class Backend:
    """One store for one test: `target` is what KAWAL_DB / --db would be (a path or a URL)."""

    kind: str
    target: str
    opened: list[Database] = field(default_factory=list)
    connections: list[Any] = field(default_factory=list)

    def open(self) -> Database:
        """A Database on the store (each call a new one, as separate processes would have)."""
        db = open_database(self.target)
        self.opened.append(db)
        return db

    def untriggered(self) -> Any:
        """A connection as someone editing the store directly would use, append-only triggers removed."""
        db = self.open()
        c = db.connect()
        self.connections.append(c)
        c.execute("DROP TRIGGER IF EXISTS audit_no_update" + (" ON audit" if self.kind == "postgres" else ""))
        c.execute("DROP TRIGGER IF EXISTS audit_no_delete" + (" ON audit" if self.kind == "postgres" else ""))
        return c

    def close(self) -> None:
        for c in self.connections:
            c.close()
        for db in self.opened:
            with contextlib.suppress(Exception):  # the test may have closed it already
                db.close()


@contextmanager
def backend(kind: str, tmp_path: Any) -> Iterator[Backend]:
    if kind == "sqlite":
        b = Backend("sqlite", str(tmp_path / "kawal.db"))
        try:
            yield b
        finally:
            b.close()
        return
    need_postgres()
    with postgres_database() as url:
        b = Backend("postgres", url)
        try:
            yield b
        finally:
            b.close()
