"""/healthz tells the truth about the running service: a lost broker, a store that takes no writes and an
ingest that falls behind each give 503 with the reason, and 200 comes back when the cause goes away."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.faults import health, publish, publisher, stop, stored
from tests.servers import KawalServer, Mosquitto, wait_for


def test_lost_broker_is_503_and_its_return_200(kawal_factory: Callable[..., KawalServer], tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        srv = kawal_factory(env={"KAWAL_MQTT_URL": broker.url})
        assert health(srv) == (200, {"status": "ok"})
        broker.stop()
        wait_for(lambda: health(srv)[0] == 503, 30, "/healthz 503 after the broker stopped")
        body = health(srv)[1]
        assert body["status"] == "unavailable"
        assert any(f"127.0.0.1:{broker.port}" in r for r in body["reasons"]), body
        assert body["reason"] == "; ".join(body["reasons"])
        broker.start()
        wait_for(lambda: health(srv) == (200, {"status": "ok"}), 60, "/healthz 200 after the broker returned")
    finally:
        broker.stop()


def test_ingest_behind_its_bound_is_503_until_it_catches_up(
    kawal_factory: Callable[..., KawalServer], tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        srv = kawal_factory(env={"KAWAL_MQTT_URL": broker.url, "KAWAL_HEALTH_MAX_LAG_S": "1"})
        db = srv.workdir / "kawal.db"
        pub = publisher(broker.port)
        publish(pub, "TRK-H1", [0])
        wait_for(lambda: stored(db, "TRK-H1") == 1, 30, "the first reading stored")
        assert health(srv)[0] == 200
        # Another process holds the database's write lock: Kawal waits for it, and falls behind.
        lock = sqlite3.connect(db, isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            publish(pub, "TRK-H1", range(1, 20))
            wait_for(lambda: health(srv)[0] == 503, 20, "/healthz 503 while ingest is behind")
            body = health(srv)[1]
            assert body["status"] == "unavailable"
            assert any("behind" in r and "bound 1 s" in r for r in body["reasons"]), body
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        wait_for(lambda: health(srv)[0] == 200, 30, "/healthz 200 once ingest caught up")
        assert stored(db, "TRK-H1") == 20
        stop(pub)
    finally:
        broker.stop()
