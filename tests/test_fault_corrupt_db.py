"""A damaged database file: `kawal serve` refuses to start, naming the file and the way back; `kawal db check`
tells a sound file from a damaged one; `kawal db backup` copies a file in use into a sound, complete copy."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from storage.sqlite import SqliteDatabase
from tests.faults import publish, publisher, stop, stored
from tests.servers import KawalServer, Mosquitto, free_port, wait_for


def kawal(*args: str, db: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
    env.update(KAWAL_DB=str(db), KAWAL_HTTP_PORT=str(free_port()), KAWAL_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}")
    return subprocess.run(
        [sys.executable, "-m", "kawal", *args], env=env, cwd=db.parent, capture_output=True, text=True, timeout=timeout
    )


def damaged_db(tmp_path: Path) -> Path:
    path = tmp_path / "kawal.db"
    db = SqliteDatabase(path)
    with db.write() as c:
        for i in range(2000):
            c.execute(
                "INSERT INTO rejected (received_at, topic, reason, detail, payload) VALUES (?, ?, ?, ?, ?)",
                (float(i), "kawal/v1/T/telemetry", "not_json", "x" * 50, b"y" * 200),
            )
    db.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    raw = bytearray(path.read_bytes())
    rng = random.Random(1)
    for page in range(2, len(raw) // 4096):  # every page after the schema page
        start = page * 4096 + 100
        raw[start : start + 64] = bytes(rng.randrange(256) for _ in range(64))
    path.write_bytes(bytes(raw))
    return path


def test_serve_refuses_a_damaged_database_and_says_how_to_recover(tmp_path: Path) -> None:
    path = damaged_db(tmp_path)
    r = kawal("serve", db=path)
    assert r.returncode != 0
    assert f"the database {path} is damaged" in r.stderr, r.stderr
    assert "kawal db check" in r.stderr and "kawal db backup" in r.stderr and ".recover" in r.stderr
    assert "Traceback" not in r.stderr
    check = kawal("db", "check", db=path)
    assert check.returncode == 1 and "is damaged" in check.stderr


def test_check_passes_a_sound_file(tmp_path: Path) -> None:
    path = tmp_path / "kawal.db"
    SqliteDatabase(path).close()
    r = kawal("db", "check", db=path)
    assert r.returncode == 0 and f"{path}: ok" in r.stdout, (r.stdout, r.stderr)


def test_backup_of_a_running_service(kawal_factory: Callable[..., KawalServer], tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        srv = kawal_factory(env={"KAWAL_MQTT_URL": broker.url})
        db = srv.workdir / "kawal.db"
        pub = publisher(broker.port)
        publish(pub, "TRK-B1", range(300))
        wait_for(lambda: stored(db, "TRK-B1") == 300, 30, "readings stored")
        copy = tmp_path / "backup.db"
        r = kawal("db", "backup", str(copy), db=db)
        assert r.returncode == 0, r.stderr
        assert f"backed up {db} to {copy}" in r.stdout
        with sqlite3.connect(copy) as conn:
            assert conn.execute("SELECT count(*) FROM readings WHERE tracker_id = 'TRK-B1'").fetchone()[0] == 300
        assert kawal("db", "check", db=copy).returncode == 0
        stop(pub)
    finally:
        broker.stop()
