"""The hash-chained audit log: appends chain, tampering of any kind is found and named."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from kawal.audit import GENESIS_HASH, AuditLog, record_hash
from kawal.cli import cli
from storage import Database, IntegrityError
from tests.backends import Backend


def _log(backend: Backend, n: int = 5) -> tuple[Database, AuditLog]:
    db = backend.open()
    audit = AuditLog(db)
    for i in range(n):
        with db.write() as c:
            audit.append(c, f"user-{i}", "trip.create", f"trip:T-{i}", {"n": i, "route": [[-7.5, 112.2]]})
    return db, audit


def test_records_chain_and_verify(backend: Backend) -> None:
    _, audit = _log(backend)
    records = audit.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    for prev, cur in itertools.pairwise(records):
        assert cur.prev_hash == prev.hash
    # The documented formula, recomputed independently.
    r = records[2]
    assert r.hash == record_hash(r.prev_hash, r.seq, r.at, r.actor, r.action, r.subject, r.data)
    result = audit.verify()
    assert result.ok and result.checked == 5 and result.head_hash == records[-1].hash


def test_append_needs_a_transaction(database: Database) -> None:
    db = database
    with pytest.raises(RuntimeError):
        AuditLog(db).append(db.conn(), "x", "y", "z", {})


def test_sql_updates_and_deletes_are_refused(backend: Backend) -> None:
    db, audit = _log(backend, 2)
    with pytest.raises(IntegrityError, match="append-only"):
        db.conn().execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1")
    with pytest.raises(IntegrityError, match="append-only"):
        db.conn().execute("DELETE FROM audit WHERE seq = 2")
    with pytest.raises(IntegrityError, match="append-only"), db.write() as c:
        c.execute("DELETE FROM audit")
    assert [r.actor for r in audit.records()] == ["user-0", "user-1"] and audit.verify().ok


def test_edited_record_is_named(backend: Backend) -> None:
    _, audit = _log(backend)
    backend.untriggered().execute('UPDATE audit SET data = \'{"n":99,"route":[[-7.5,112.2]]}\' WHERE seq = 3')
    result = audit.verify()
    assert not result.ok and result.first_bad_seq == 3 and result.checked == 2
    assert "altered" in (result.reason or "")


def test_rehashed_record_breaks_the_next_link(backend: Backend) -> None:
    _, audit = _log(backend)
    r = audit.records()[1]
    forged = record_hash(r.prev_hash, r.seq, r.at, "mallory", r.action, r.subject, r.data)
    backend.untriggered().execute("UPDATE audit SET actor = 'mallory', hash = ? WHERE seq = 2", (forged,))
    result = audit.verify()
    assert not result.ok and result.first_bad_seq == 3
    assert "does not link" in (result.reason or "")


def test_deleted_records_are_found(backend: Backend) -> None:
    _, audit = _log(backend)
    backend.untriggered().execute("DELETE FROM audit WHERE seq = 2")
    result = audit.verify()
    assert not result.ok and result.first_bad_seq == 2 and "missing" in (result.reason or "")


def test_records_deleted_from_the_end_are_found(backend: Backend) -> None:
    _, audit2 = _log(backend)
    backend.untriggered().execute("DELETE FROM audit WHERE seq >= 4")
    result2 = audit2.verify()
    assert not result2.ok and result2.first_bad_seq == 4 and "deleted" in (result2.reason or "")


def test_concurrent_appends_keep_one_chain(backend: Backend) -> None:
    audit = AuditLog(backend.open())
    barrier = threading.Barrier(6)

    def work(k: int) -> None:
        db = backend.open()  # a Database each, as separate workers of a cluster have
        barrier.wait()
        for i in range(25):
            with db.write() as c:
                AuditLog(db).append(c, f"t{k}", "x", f"s:{k}:{i}", {"i": i})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = audit.verify()
    assert result.ok and result.checked == 150


def test_kawal_audit_verify_command(backend: Backend, tmp_path: Path) -> None:
    _log(backend)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--db", backend.target])
    assert ok.exit_code == 0, ok.output
    assert "OK: 5 record(s)" in ok.output

    backend.untriggered().execute("UPDATE audit SET subject = 'trip:T-X' WHERE seq = 4")
    bad = runner.invoke(cli, ["audit", "verify", "--db", backend.target])
    assert bad.exit_code == 1
    assert "BROKEN at record 4" in bad.output

    missing = runner.invoke(cli, ["audit", "verify", "--db", str(tmp_path / "nope.db")])
    assert missing.exit_code != 0 and "no database" in missing.output
