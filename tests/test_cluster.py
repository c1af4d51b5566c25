"""Cluster mode (CONTRACT 3.1) with real processes: workers (`kawal serve`), PostgreSQL, NATS JetStream and
Mosquitto. The same labelled fleet through one process and through the cluster must give the same alerts
(none missing, no twins) and store every reading once, also across a `kill -9` of a worker and a restart
of the engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster.launch import LocalCluster
from cluster.leases import rendezvous
from cluster.natsd import PrivateNats
from cluster.subjects import partition_of
from simulators.model import Scenario
from simulators.streams import Message
from storage import open_database
from tests import backends
from tests.cluster_run import (
    STOP_TRACKER,
    TOKEN,
    AlertKey,
    StreamWatcher,
    alert_keys,
    event_ids,
    fleet,
    publish,
    publish_split,
    readings,
    settle,
    stop_start,
)
from tests.servers import KawalServer, Mosquitto, VictoriaMetrics, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PARTITIONS = 8
WORKER_ENV = {
    "KAWAL_CLOCK": "event",
    "KAWAL_ADMIN_TOKEN": TOKEN,
    "KAWAL_CLUSTER_PARTITIONS": str(PARTITIONS),
    "KAWAL_SNAPSHOT_INTERVAL_S": "1",
}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return fleet()


@pytest.fixture(scope="module")
def one_process(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[AlertKey], int]:
    """What a single `kawal serve` (SQLite) raises and stores for the fleet."""
    work = tmp_path_factory.mktemp("single")
    broker = Mosquitto(work / "mosquitto").start()
    server = KawalServer(work / "kawal-single", env={"KAWAL_MQTT_URL": broker.url, "KAWAL_CLOCK": "event"})
    server.admin_token = TOKEN
    try:
        server.start()
        expected = publish(server.base_url, broker.url, scenario)
        db = open_database(str(server.workdir / "kawal.db"))
        try:
            keys = settle(db, expected)
            stored = readings(db)
        finally:
            db.close()
    finally:
        server.stop()
        broker.stop()
    assert stored == (expected, expected)
    assert any(k[1] == "unscheduled_stop" and k[0] == "CL-TRK00008" for k in keys), keys
    return keys, expected


@pytest.fixture
def pg_url() -> Iterator[str]:
    backends.need_postgres()
    with backends.postgres_database() as url:
        yield url


def _cluster(
    tmp_path: Path,
    pg_url: str,
    workers: int,
    mosquitto: Mosquitto,
    nats: PrivateNats,
    env: dict[str, str] | None = None,
) -> LocalCluster:
    return LocalCluster(
        tmp_path / "cluster",
        pg_url,
        workers=workers,
        mqtt_url=mosquitto.url,
        cluster_url=nats.url,
        env={**WORKER_ENV, **(env or {})},
    ).start()


def _check_same(pg_url: str, one: tuple[list[AlertKey], int], cluster: LocalCluster) -> None:
    db = open_database(pg_url)
    try:
        keys = settle(db, one[1])
        assert readings(db) == (one[1], one[1])  # every reading, once
    finally:
        db.close()
    assert keys == one[0]
    # One service: every worker's API lists every alert.
    for w in cluster.members:
        if w.alive():
            r = httpx.get(
                f"{w.http_url}/api/v1/alerts", params={"limit": 1000}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert r.status_code == 200
            assert sorted(a["id"] for a in r.json()["items"]) == sorted(_ids(pg_url))


def _ids(pg_url: str) -> list[str]:
    db = open_database(pg_url)
    try:
        return [str(r[0]) for r in db.conn().execute("SELECT id FROM alerts")]
    finally:
        db.close()


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_raise_what_one_process_raises(
    workers: int,
    scenario: Scenario,
    one_process: tuple[list[AlertKey], int],
    pg_url: str,
    mosquitto: Mosquitto,
    nats_server: PrivateNats,
    victoria: VictoriaMetrics,
    tmp_path: Path,
) -> None:
    cluster = _cluster(tmp_path, pg_url, workers, mosquitto, nats_server, {"KAWAL_INFLUX_URL": victoria.url})
    watchers = [StreamWatcher(w.http_url) for w in cluster.members]
    try:
        for watcher in watchers:
            assert watcher.connected.wait(10)
        publish(cluster.members[0].http_url, mosquitto.url, scenario)
        _check_same(pg_url, one_process, cluster)
        # One service: every worker's live stream carries every alert change of the cluster, once.
        db = open_database(pg_url)
        try:
            changes = event_ids(db)
        finally:
            db.close()
        wait_for(lambda: all(set(w.arrived) == set(changes) for w in watchers), 15, "every change on every stream")
        delays = [w.arrived[i] - at for w in watchers for i, at in changes.items()]
        print(f"{len(changes)} alert changes on {workers} streams; slowest arrived {max(delays):.3f} s after commit")
        # The InfluxDB output writes each reading once, whichever worker stored it (one forwarder per cluster).
        db = open_database(pg_url)
        try:
            with_fix = int(db.conn().execute("SELECT count(*) FROM readings WHERE lat IS NOT NULL").fetchone()[0])
        finally:
            db.close()

        def written() -> int:
            return sum(len(s["timestamps"]) for s in victoria.export('{__name__="kawal_reading_lat"}'))

        wait_for(lambda: written() >= with_fix, 30, "every reading in VictoriaMetrics")
        time.sleep(1.5)  # a second forwarder would write its copies now
        assert written() == with_fix
    finally:
        for watcher in watchers:
            watcher.close()
        cluster.stop()


def test_kill_9_of_a_worker_mid_stop_loses_nothing(
    scenario: Scenario,
    one_process: tuple[list[AlertKey], int],
    pg_url: str,
    mosquitto: Mosquitto,
    nats_server: PrivateNats,
    tmp_path: Path,
) -> None:
    cluster = _cluster(tmp_path, pg_url, 2, mosquitto, nats_server)
    # The worker that detects the stopping crate dies five minutes (event time) into its stop, once it has
    # taken the readings of those five minutes.
    owner_id = rendezvous(partition_of(STOP_TRACKER, PARTITIONS), [w.worker_id for w in cluster.members])
    owner = next(w for w in cluster.members if w.worker_id == owner_id)
    kill_at = stop_start(scenario) + 300

    def kill() -> None:
        db = open_database(pg_url)
        try:
            wait_for(
                lambda: (
                    db.conn()
                    .execute("SELECT 1 FROM readings WHERE tracker_id = ? AND ts >= ?", (STOP_TRACKER, kill_at - 60))
                    .fetchone()
                    is not None
                ),
                60,
                "the stop's first minutes stored",
            )
            assert not any(k[0] == STOP_TRACKER and k[1] == "unscheduled_stop" for k in alert_keys(db))
        finally:
            db.close()
        time.sleep(1.0)  # past a snapshot: the stop is in the saved state, and more after it is replayed
        cluster.kill(owner)

    try:
        survivor = next(w for w in cluster.members if w is not owner)
        publish_split(survivor.http_url, mosquitto.url, scenario, kill_at, kill)
        assert not owner.alive()
        _check_same(pg_url, one_process, cluster)
    finally:
        cluster.stop()


def test_engine_restart_under_load_loses_nothing(
    scenario: Scenario,
    one_process: tuple[list[AlertKey], int],
    pg_url: str,
    mosquitto: Mosquitto,
    nats_server: PrivateNats,
    tmp_path: Path,
) -> None:
    cluster = _cluster(tmp_path, pg_url, 2, mosquitto, nats_server)
    restarted = threading.Event()
    half = len(list(scenario.messages())) // 2
    count = [0]

    def on_publish(msg: Message, wall: float) -> None:
        count[0] += 1
        if count[0] == half and not restarted.is_set():
            restarted.set()
            nats_server.stop(kill=True)
            nats_server.start()

    try:
        publish(cluster.members[0].http_url, mosquitto.url, scenario, max_rate=1500, on_publish=on_publish)
        assert restarted.is_set()
        _check_same(pg_url, one_process, cluster)
    finally:
        cluster.stop()


def test_kawal_cluster_prints_its_endpoints_and_stops_on_sigterm(pg_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
    env["KAWAL_CLUSTER_PARTITIONS"] = str(PARTITIONS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kawal", "cluster", "--workers", "2", "--db", pg_url, "--dir", str(tmp_path / "c")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        endpoints = json.loads(line)  # one line of JSON (CONTRACT 3.1)
        assert endpoints["mqtt_url"].startswith("mqtt://")
        assert [w["worker_id"] for w in endpoints["workers"]] == ["w1", "w2"]
        for w in endpoints["workers"]:
            assert httpx.get(f"{w['http_url']}/healthz").status_code == 200
            os.kill(w["pid"], 0)  # a live process
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        for w in endpoints["workers"]:
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"{w['http_url']}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
