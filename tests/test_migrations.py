"""The schema's migrations on both backends: applied once, also when several workers open the store at once."""

from __future__ import annotations

import threading

from storage import Database
from storage.migrate import migrations
from tests.backends import Backend


def _versions(db: Database) -> list[int]:
    return [int(r[0]) for r in db.conn().execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_a_second_open_applies_nothing(backend: Backend) -> None:
    first = backend.open()
    expected = [m.version for m in migrations(first.dialect)]
    assert first.applied == expected and _versions(first) == expected
    second = backend.open()
    assert second.applied == [] and _versions(second) == expected


def test_concurrent_opens_apply_each_migration_once(backend: Backend) -> None:
    """Four workers start at once on an empty store: between them, every migration is applied exactly once."""
    barrier = threading.Barrier(4)
    opened: list[Database] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def start() -> None:
        barrier.wait()
        try:
            db = backend.open()
        except BaseException as e:
            errors.append(e)
            return
        with lock:
            opened.append(db)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(opened) == 4
    expected = [m.version for m in migrations(opened[0].dialect)]
    assert sorted(v for db in opened for v in db.applied) == expected
    assert _versions(opened[0]) == expected


def test_ids_order_bytewise_on_both(database: Database) -> None:
    """Lists sorted by id come out the same on both backends (PostgreSQL's columns use COLLATE "C")."""
    ids = ["b", "B", "a-1", "a_1", "a.1", "A1", "a1", "Z"]
    with database.write() as c:
        c.executemany("INSERT INTO trackers (tracker_id, created_at) VALUES (?, 0)", [(i,) for i in ids])
    got = [r[0] for r in database.conn().execute("SELECT tracker_id FROM trackers ORDER BY tracker_id")]
    assert got == sorted(ids)
