"""Ingest end to end through `kawal serve` (CONTRACT sections 1 and 3), with real Mosquitto and
VictoriaMetrics: exactly-once storage, a SIGKILL under QoS 1 load, and the time-series server going away."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable

from tests.servers import KawalServer, Mosquitto, VictoriaMetrics, http_get, wait_for
from tests.test_ingest_harness import (
    expected_ms,
    make_workload,
    publish_all,
    publish_workload,
    publisher,
    reading,
    vm_samples,
)


def db_count(srv: KawalServer, sql: str = "SELECT count(*) FROM readings") -> int:
    path = srv.workdir / "kawal.db"
    if not path.exists():
        return 0
    c = sqlite3.connect(path, timeout=30)
    try:
        return int(c.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # schema not created yet
        return 0
    finally:
        c.close()


def metrics(srv: KawalServer) -> str:
    status, body = http_get(f"{srv.base_url}/metrics")
    assert status == 200
    return body.decode()


def metric_value(text: str, series: str) -> float:
    for ln in text.splitlines():
        if ln.startswith(series + " "):
            return float(ln.split()[-1])
    return 0.0


def test_10k_readings_through_kawal_serve_exactly_once(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, kawal_factory: Callable[..., KawalServer]
) -> None:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, "KAWAL_INFLUX_URL": victoria.url})
    paho_msgs, cli_lines = make_workload(200, 50, random.Random(7))
    paho_msgs += [("kawal/v1/TRK-0001/telemetry", b"not json"), ("kawal/v1/TRK-0001/telemetry", b"[1, 2]")]
    publish_workload(mosquitto.port, paho_msgs, cli_lines, "e2e-pub")

    wait_for(lambda: db_count(srv) >= 10_000, what="10,000 readings stored")
    assert db_count(srv) == 10_000
    assert db_count(srv, "SELECT count(DISTINCT tracker_id || ':' || seq) FROM readings") == 10_000
    wait_for(lambda: metric_value(metrics(srv), "kawal_readings_stored_total") == 10_000, what="metrics")
    text = metrics(srv)
    assert metric_value(text, 'kawal_readings_rejected_total{reason="not_json"}') == 1
    assert metric_value(text, 'kawal_readings_rejected_total{reason="not_object"}') == 2
    assert metric_value(text, "kawal_messages_received_total") == len(paho_msgs) + sum(
        len(v) for v in cli_lines.values()
    )

    want = expected_ms(50)
    wait_for(lambda: sum(len(v) for v in vm_samples(victoria).values()) >= 10_000, what="VictoriaMetrics")
    samples = vm_samples(victoria)
    assert len(samples) == 200
    for tid, ts in samples.items():
        assert ts == want, tid


def test_sigkill_under_qos1_load_then_restart_stores_everything_once(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer]
) -> None:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, "KAWAL_MQTT_CLIENT_ID": "kawal-e2e"})
    trackers, rounds = 25, 120
    total = trackers * rounds
    pub = publisher(mosquitto.port, "kill-pub")
    published = 0

    def produce() -> None:
        nonlocal published
        for i in range(rounds):
            publish_all(
                pub,
                [
                    (f"kawal/v1/K-{t:02d}/telemetry", json.dumps(reading(i, t)).encode())
                    for t in range(trackers)
                ],
            )
            published += trackers
            time.sleep(0.02)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_for(lambda: db_count(srv) > 400, what="readings before the kill")
    srv.stop(kill=True)
    at_kill = db_count(srv)
    wait_for(lambda: published >= at_kill + 500, what="readings published while Kawal is down")
    srv.start()
    producer.join(120)
    assert published == total
    wait_for(lambda: db_count(srv) >= total, what="every reading after the restart")
    assert db_count(srv) == total
    assert db_count(srv, "SELECT count(DISTINCT tracker_id || ':' || seq) FROM readings") == total
    pub.disconnect()


def test_victoriametrics_down_30s_under_load_loses_nothing(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, kawal_factory: Callable[..., KawalServer]
) -> None:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, "KAWAL_INFLUX_URL": victoria.url})
    pub = publisher(mosquitto.port, "vm-pub")
    trackers, rounds = 20, 150

    def burst(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            publish_all(
                pub,
                [
                    (f"kawal/v1/V-{t:02d}/telemetry", json.dumps(reading(i, t)).encode())
                    for t in range(trackers)
                ],
            )

    burst(0, 30)
    wait_for(lambda: sum(len(v) for v in vm_samples(victoria).values()) == 600, what="first readings in VM")
    victoria.stop()
    down_at = time.monotonic()
    i = 30
    while time.monotonic() - down_at < 30:  # the load goes on while the server is away
        burst(i, min(i + 4, rounds))
        i = min(i + 4, rounds)
        time.sleep(1.0)
    text = metrics(srv)
    assert metric_value(text, "kawal_influx_write_errors_total") > 0
    assert metric_value(text, "kawal_influx_pending_readings") > 0
    victoria.start()
    burst(i, rounds)
    total = trackers * rounds
    wait_for(lambda: db_count(srv) == total, what="all readings in SQLite")
    wait_for(
        lambda: sum(len(v) for v in vm_samples(victoria).values()) >= total,
        timeout=90,
        what="the backlog to drain",
    )
    samples = vm_samples(victoria)
    want = expected_ms(rounds)
    assert len(samples) == trackers
    for tid, ts in samples.items():
        assert ts == want, tid
    pub.disconnect()


def test_owntracks_phone_is_a_tracker(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer]
) -> None:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url})
    loc = {
        "_type": "location",
        "tst": int(time.time()) - 60,
        "lat": -7.55,
        "lon": 112.23,
        "acc": 9,
        "tid": "s7",
    }
    pub = publisher(mosquitto.port, "ot-pub")
    publish_all(pub, [("owntracks/siti/pixel7", json.dumps(loc).encode())])
    pub.disconnect()
    wait_for(lambda: db_count(srv, "SELECT count(*) FROM readings WHERE tracker_id = 'siti.pixel7'") == 1)
    assert db_count(srv, "SELECT count(*) FROM trackers WHERE tracker_id = 'siti.pixel7'") == 1
