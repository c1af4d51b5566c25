"""What the stages rely on from every backend: rows by index and name, storage errors, read snapshots,
and, on PostgreSQL, the `?` translation, a password-free location and a connection that recovers."""

from __future__ import annotations

import pytest

from storage import Database, IntegrityError, OperationalError, StorageError
from storage.postgres.connection import translate
from storage.postgres.database import without_password
from tests.backends import Backend


def test_rows_answer_by_index_and_by_name(database: Database) -> None:
    with database.write() as c:
        c.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("k'%?", "v"))
    row = database.conn().execute("SELECT key, value FROM meta WHERE key = ?", ("k'%?",)).fetchone()
    assert (row[0], row["value"], tuple(row[0:2])) == ("k'%?", "v", ("k'%?", "v"))
    # Literal ? and % in SQL text stay literal.
    n = database.conn().execute("SELECT count(*) FROM meta WHERE key LIKE 'k''%?' AND value != '?'").fetchone()
    assert n[0] == 1
    plain = database.conn().plain_cursor().execute("SELECT key FROM meta").fetchall()
    assert plain == [("k'%?",)] and type(plain[0]) is tuple


def test_errors_are_the_storage_errors(database: Database) -> None:
    with database.write() as c:
        c.execute("INSERT INTO tokens (name, role, token_hash, created_at) VALUES ('a', 'viewer', 'h', 0)")
    with pytest.raises(IntegrityError), database.write() as c:
        c.execute("INSERT INTO tokens (name, role, token_hash, created_at) VALUES ('b', 'viewer', 'h', 0)")
    with pytest.raises(StorageError):
        database.conn().execute("SELECT no_such_column FROM tokens")
    # The connection is usable after both.
    assert database.conn().execute("SELECT count(*) FROM tokens").fetchone()[0] == 1


def test_a_read_snapshot_does_not_see_later_commits(backend: Backend) -> None:
    reader, writer = backend.open(), backend.open()
    with reader.read() as c:
        before = c.execute("SELECT count(*) FROM meta").fetchone()[0]
        with writer.write() as w:
            w.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
        assert c.execute("SELECT count(*) FROM meta").fetchone()[0] == before
    assert reader.conn().execute("SELECT count(*) FROM meta").fetchone()[0] == before + 1


def test_translate_placeholders_outside_quotes() -> None:
    assert translate("SELECT ? , '?', \"a?\" -- ?\n, ?") == "SELECT %s , '?', \"a?\" -- ?\n, %s"
    assert translate("SELECT 'it''s 5%' || ?") == "SELECT 'it''s 5%%' || %s"
    assert translate("SELECT 5 % 3") == "SELECT 5 %% 3"


def test_location_leaves_the_password_out() -> None:
    assert without_password("postgresql://kawal:s3cret@db:5432/kawal") == "postgresql://kawal@db:5432/kawal"
    assert without_password("postgresql://db/kawal") == "postgresql://db/kawal"


def test_a_lost_connection_is_an_operational_error_then_replaced(postgres_url: str) -> None:
    backend = Backend("postgres", postgres_url)
    try:
        db, admin = backend.open(), backend.open()
        pid = db.conn().execute("SELECT pg_backend_pid()").fetchone()[0]
        admin.conn().execute("SELECT pg_terminate_backend(?)", (pid,))
        with pytest.raises(OperationalError):  # what the ingest worker retries on
            db.conn().execute("SELECT 1")
        assert db.conn().execute("SELECT 1").fetchone()[0] == 1  # a new connection from the pool
        with db.write() as c:
            c.execute("INSERT INTO meta (key, value) VALUES ('after', 'reconnect')")
    finally:
        backend.close()


def test_an_unreachable_server_is_a_clear_operational_error() -> None:
    from storage import open_database
    from tests.servers import free_port

    with pytest.raises(OperationalError, match=r"127\.0\.0\.1"):
        open_database(f"postgresql://postgres@127.0.0.1:{free_port()}/kawal")
