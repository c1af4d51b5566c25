"""The disk fills up under Kawal's SQLite file: nothing it could not store is acknowledged, /healthz answers
503 with the reason, the log says what to do, and once the space is back Kawal goes on by itself with
nothing lost. Runs on a small tmpfs (needs root to mount it)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.sqlite import SqliteDatabase
from tests.faults import health, publish, publisher, stop, stored
from tests.servers import KawalServer, Mosquitto, free_port, wait_for

NOTE = "x" * 2000  # an unknown field is kept with the reading: each one takes real space


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(fs: Path) -> Path:
    """Take every free byte of the filesystem with one file."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 20, 65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def store_refused(srv: KawalServer) -> bool:
    status, body = health(srv)
    return status == 503 and any(r.startswith("cannot write to the store") for r in body.get("reasons", []))


def test_disk_full_then_space_returns(kawal_factory: Callable[..., KawalServer], tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", "6m") as fs:
        broker = Mosquitto(tmp_path / "broker").start()
        try:
            env = {"KAWAL_MQTT_URL": broker.url, "KAWAL_DB": str(fs / "kawal.db")}
            srv = kawal_factory(env=env)
            db = fs / "kawal.db"
            pub = publisher(broker.port)
            publish(pub, "TRK-D1", range(0, 10), note=NOTE)
            wait_for(lambda: stored(db, "TRK-D1") == 10, 30, "readings stored before the disk fills")

            # 1. Full: nothing is acknowledged. Kawal is killed while full; the broker still has every message.
            filler = fill(fs)
            publish(pub, "TRK-D1", range(10, 400), note=NOTE)
            wait_for(lambda: store_refused(srv), 30, "/healthz 503: cannot write to the store")
            reasons = health(srv)[1]["reasons"]
            assert any("full" in r for r in reasons), reasons
            assert f"Free space on the filesystem of {db}" in srv.log()
            srv.stop(kill=True)
            filler.unlink()
            srv.start()
            wait_for(lambda: stored(db, "TRK-D1") == 400, 60, "every reading stored after the restart")

            # 2. Full again: when space returns Kawal goes on by itself, without a restart.
            filler = fill(fs)
            publish(pub, "TRK-D1", range(400, 800), note=NOTE)
            wait_for(lambda: store_refused(srv), 30, "/healthz 503 on the second fill")
            filler.unlink()
            wait_for(lambda: health(srv) == (200, {"status": "ok"}), 60, "/healthz 200 once space returned")
            wait_for(lambda: stored(db, "TRK-D1") == 800, 60, "every reading stored once space returned")
            stop(pub)
        finally:
            broker.stop()


def test_read_only_database_is_refused_at_start_not_called_damaged(tmp_path: Path) -> None:
    """The kernel will not turn a filesystem read-only under open files, so this is the start: a store
    Kawal could not write is refused with what to do, and is not mistaken for a damaged file."""
    with small_filesystem(tmp_path / "small", "8m") as fs:
        SqliteDatabase(fs / "kawal.db").close()
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
        env.update(
            KAWAL_DB=str(fs / "kawal.db"),
            KAWAL_HTTP_PORT=str(free_port()),
            KAWAL_MQTT_URL=f"mqtt://127.0.0.1:{free_port()}",
        )
        r = subprocess.run(
            [sys.executable, "-m", "kawal", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert r.returncode != 0
        assert f"the database {fs / 'kawal.db'} is on a read-only filesystem" in r.stderr, r.stderr
        assert "damaged" not in r.stderr and "Traceback" not in r.stderr
        check = subprocess.run(
            [sys.executable, "-m", "kawal", "db", "check", "--db", str(fs / "kawal.db")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "damaged" not in check.stderr, check.stderr
