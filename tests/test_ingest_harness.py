"""The ingest components wired by hand (no API, no detection): MQTT consumer -> pipeline -> SQLite,
plus the InfluxDB forwarder, against real Mosquitto, amqtt and VictoriaMetrics.

`IngestHarness` is also runnable as a process (`python -m tests.test_ingest_harness ...`) so a test can
SIGKILL it: the guarantee of CONTRACT section 3 is checked on the components themselves, independently
of the service wiring (tests/test_ingest_e2e.py checks it on `kawal serve`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.registry import TrackerRegistry
from ingest.influx import InfluxForwarder
from ingest.mqtt import InboundMessage, MqttConsumer
from ingest.pipeline import IngestPipeline, NullDetector
from ingest.readings import ReadingStore
from kawal.clock import WallClock
from kawal.metrics import Metrics
from kawal.settings import Settings
from storage.sqlite import SqliteDatabase
from tests.servers import Mosquitto, VictoriaMetrics, wait_for

T0 = time.time() - 86400.0  # readings from yesterday: valid, and inside VictoriaMetrics' retention


class IngestHarness:
    """The ingest path as kawal/service.py wires it, minus detection and the API."""

    def __init__(self, db_path: Path, mqtt_url: str, influx_url: str | None = None, **settings: Any) -> None:
        self.settings = Settings(mqtt_url=mqtt_url, influx_url=influx_url, db=db_path, **settings)
        self.metrics = Metrics()
        self.db = SqliteDatabase(db_path)
        self.readings = ReadingStore(self.db)
        self.registry = TrackerRegistry(self.db)
        self.consumer = MqttConsumer(self.settings, mqtt_url, self._submit, self.metrics)
        self.pipeline = IngestPipeline(
            self.db,
            self.readings,
            self.registry,
            NullDetector(),
            WallClock(),
            self.metrics,
            self.consumer.ack,
        )
        self.influx = InfluxForwarder(self.db, self.settings, self.metrics) if influx_url else None

    def _submit(self, msg: InboundMessage) -> None:
        self.pipeline.submit(msg)

    def start(self, timeout: float = 20.0) -> IngestHarness:
        self.pipeline.start()
        self.consumer.start()
        if self.influx is not None:
            self.influx.start()
        assert self.consumer.subscribed.wait(timeout), "not subscribed"
        return self

    def stop(self) -> None:
        self.consumer.stop()
        self.pipeline.stop(drain=True)
        if self.influx is not None:
            self.influx.stop()

    def metric(self, name: str, **labels: str) -> float:
        v = self.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if v is None else v


# -- publishing helpers ------------------------------------------------------------------------------------


def publisher(port: int, client_id: str = "test-pub") -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(200)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_all(c: mqtt.Client, msgs: list[tuple[str, bytes]], qos: int = 1) -> None:
    infos = [c.publish(t, p, qos=qos) for t, p in msgs]
    for info in infos:
        info.wait_for_publish(30)
        assert info.is_published()


def reading(i: int, tracker: int) -> dict[str, Any]:
    return {
        "ts": round(T0 + i * 5.0, 3),
        "seq": i,
        "lat": -7.5 - tracker * 1e-3,
        "lon": 112.2 + i * 1e-5,
        "spd": 30.0,
        "bat": 90,
        "seal": "closed",
    }


def make_workload(
    trackers: int, per_tracker: int, rng: random.Random
) -> tuple[list[tuple[str, bytes]], dict[str, list[bytes]]]:
    """(messages for paho, lines for mosquitto_pub by topic). Every tracker's readings, once each, split
    between single readings and shuffled batches; batches also repeat some readings."""
    paho_msgs: list[tuple[str, bytes]] = []
    cli_lines: dict[str, list[bytes]] = {}
    for t in range(trackers):
        tid = f"TRK-{t:04d}"
        topic = f"kawal/v1/{tid}/telemetry"
        rs = [reading(i, t) for i in range(per_tracker)]
        if t % 20 == 0:  # 1 tracker in 20 goes through the real mosquitto_pub client
            cli_lines[topic] = [json.dumps(r).encode() for r in rs]
            continue
        i = 0
        while i < len(rs):
            if rng.random() < 0.5:
                paho_msgs.append((topic, json.dumps(rs[i]).encode()))
                i += 1
            else:
                n = rng.randint(2, 12)
                chunk = rs[i : i + n]
                batch = chunk + rng.sample(chunk, k=min(2, len(chunk)))  # duplicates inside the batch
                rng.shuffle(batch)
                paho_msgs.append((topic, json.dumps(batch).encode()))
                i += n
        # Whole messages sent twice, as a tracker that did not see its PUBACK would.
        paho_msgs.append((topic, json.dumps(rs[rng.randrange(len(rs))]).encode()))
    rng.shuffle(paho_msgs)
    return paho_msgs, cli_lines


def publish_workload(
    port: int, paho_msgs: list[tuple[str, bytes]], cli_lines: dict[str, list[bytes]], client_id: str = "test-pub"
) -> None:
    """Publish a `make_workload` at QoS 1: paho's messages while mosquitto_pub sends its lines alongside."""
    pub = publisher(port, client_id)
    threads = [threading.Thread(target=mosquitto_pub_lines, args=(port, t, ls)) for t, ls in cli_lines.items()]
    for th in threads:
        th.start()
    publish_all(pub, paho_msgs)
    for th in threads:
        th.join()
    pub.disconnect()


def mosquitto_pub_lines(port: int, topic: str, lines: list[bytes]) -> None:
    """Publish each line as one message with the real mosquitto_pub client (QoS 1, MQTT 5)."""
    r = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-V", "5", "-t", topic, "-l"],
        input=b"\n".join(lines) + b"\n",
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def vm_samples(vm: VictoriaMetrics, field: str = "lat") -> dict[str, list[int]]:
    """tracker_id -> sorted sample timestamps of kawal_reading_<field> in VictoriaMetrics."""
    out: dict[str, list[int]] = {}
    for s in vm.export(f'{{__name__="kawal_reading_{field}"}}'):
        out.setdefault(s["metric"]["tracker_id"], []).extend(s["timestamps"])
    return {k: sorted(v) for k, v in out.items()}


def expected_ms(per_tracker: int) -> list[int]:
    return sorted(round(round(T0 + i * 5.0, 3) * 1000) for i in range(per_tracker))


@pytest.fixture
def harness_factory(tmp_path: Path) -> Iterator[Callable[..., IngestHarness]]:
    made: list[IngestHarness] = []

    def make(
        mqtt_url: str, influx_url: str | None = None, name: str = "kawal", **settings: Any
    ) -> IngestHarness:
        h = IngestHarness(tmp_path / name / "kawal.db", mqtt_url, influx_url, **settings).start()
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()


# -- tests ---------------------------------------------------------------------------------------------------


def test_10k_readings_from_200_trackers_stored_exactly_once(
    mosquitto: Mosquitto, victoria: VictoriaMetrics, harness_factory: Callable[..., IngestHarness]
) -> None:
    h = harness_factory(mosquitto.url, victoria.url)
    assert h.consumer.protocol == "5"
    paho_msgs, cli_lines = make_workload(200, 50, random.Random(2))
    publish_workload(mosquitto.port, paho_msgs, cli_lines)

    wait_for(lambda: h.readings.count() >= 10_000, what="10,000 readings in SQLite")
    rows = h.db.conn().execute("SELECT tracker_id, seq, ts FROM readings").fetchall()
    assert len(rows) == 10_000
    assert len({(r[0], r[1]) for r in rows}) == 10_000
    assert {r[0] for r in rows} == {f"TRK-{t:04d}" for t in range(200)}
    assert h.metric("kawal_readings_stored_total") == 10_000
    assert h.metric("kawal_readings_duplicate_total") > 0
    assert h.metric("kawal_readings_rejected_total", reason="not_json") == 0
    assert h.registry.get("TRK-0199") is not None
    track = h.readings.track("TRK-0007")
    assert [r.seq for r in track] == list(range(50))  # time order, whatever the arrival order

    assert h.influx is not None
    wait_for(lambda: h.influx is not None and h.influx.pending() == 0, what="the InfluxDB outbox to drain")
    samples = vm_samples(victoria)
    assert len(samples) == 200
    want = expected_ms(50)
    for tid, ts in samples.items():
        assert ts == want, tid
    seal = vm_samples(victoria, "seal_code")
    assert sum(len(v) for v in seal.values()) == 10_000
    assert vm_samples(victoria, "seal") == {}  # no meaningless string-field series in VictoriaMetrics


def test_owntracks_and_status_through_the_broker(
    mosquitto: Mosquitto, harness_factory: Callable[..., IngestHarness]
) -> None:
    h = harness_factory(mosquitto.url)
    pub = publisher(mosquitto.port)
    loc = {
        "_type": "location",
        "tst": int(T0),
        "lat": -7.55,
        "lon": 112.23,
        "acc": 8,
        "vel": 12,
        "batt": 77,
        "tid": "ph",
    }
    publish_all(
        pub,
        [
            ("owntracks/siti/pixel7", json.dumps(loc).encode()),
            ("owntracks/siti/pixel7", json.dumps({"_type": "waypoint", "tst": int(T0)}).encode()),
            ("owntracks/siti/pixel7/event", json.dumps({"_type": "transition"}).encode()),
        ],
    )
    pub.publish("kawal/v1/TRK-0042/status", b"offline", qos=1, retain=True).wait_for_publish(10)
    wait_for(lambda: h.readings.latest("siti.pixel7") is not None and h.registry.get("TRK-0042") is not None)
    r = h.readings.latest("siti.pixel7")
    assert r is not None
    assert (r.lat, r.lon, r.acc, r.spd, r.bat, r.extra) == (-7.55, 112.23, 8.0, 12.0, 77.0, {"tid": "ph"})
    wait_for(lambda: h.metric("kawal_messages_received_total") >= 3)
    assert h.readings.count() == 1 and h.readings.rejected() == []
    tracker = h.registry.get("TRK-0042")
    assert tracker is not None and tracker["status"] == "offline"
    pub.disconnect()


def test_every_rejection_reason_through_the_broker(
    mosquitto: Mosquitto, harness_factory: Callable[..., IngestHarness]
) -> None:
    from tests.test_decode import REJECTION_CASES

    h = harness_factory(mosquitto.url)
    pub = publisher(mosquitto.port)
    # The decoder's "now" is the wall clock here, so the future case is rebuilt around it.
    now = time.time()
    cases = [(t, p) for _, t, p, reason in REJECTION_CASES if reason != "ts_future"]
    cases.append(("kawal/v1/TRK-0001/telemetry", json.dumps({"ts": now + 25 * 3600}).encode()))
    mixed = [
        reading(1, 1),
        {"ts": now, "lat": 91, "lon": 0},
        reading(2, 1),
        "x",
        {**reading(3, 1), "id": "nope"},
    ]
    cases.append(("kawal/v1/TRK-0001/telemetry", json.dumps(mixed).encode()))
    publish_all(pub, cases)
    n_expected = len(REJECTION_CASES) + 3  # the mixed batch has three invalid readings
    wait_for(lambda: sum(1 for _ in h.readings.rejected(1000)) >= n_expected, what="all rejections")
    rejected = h.readings.rejected(1000)
    want = {c[3] for c in REJECTION_CASES}
    assert {r["reason"] for r in rejected} == want
    for r in rejected:
        assert len(r["payload"]) <= 4096 and r["topic"]
    big = [r for r in rejected if r["reason"] == "payload_too_large"]
    assert len(big[0]["payload"]) == 4096  # truncated, not dropped
    for reason in want:
        assert h.metric("kawal_readings_rejected_total", reason=reason) >= 1, reason
    # The mixed batch's valid readings were stored.
    assert sorted(r.seq for r in h.readings.track("TRK-0001") if r.seq is not None) == [1, 2]
    pub.disconnect()


def test_amqtt_only_speaks_311_and_the_consumer_falls_back(
    tmp_path: Path, harness_factory: Callable[..., IngestHarness]
) -> None:
    from kawal.broker import EmbeddedBroker

    broker = EmbeddedBroker(Settings(embedded_broker="amqtt", embedded_mqtt_port=0), tmp_path / "amqtt")
    url = broker.start()
    try:
        h = harness_factory(url, name="k1")
        assert h.consumer.protocol == "3.1.1"
        port = int(url.rsplit(":", 1)[1])
        pub = publisher(port)
        publish_all(
            pub, [(f"kawal/v1/AMQ-{i % 3}/telemetry", json.dumps(reading(i, 0)).encode()) for i in range(30)]
        )
        # Stored *and acknowledged*: amqtt drops a QoS 1 message whose PUBACK is not back within 5 s
        # instead of keeping it for the next connection, so an ack lost to the stop below would stall it.
        wait_for(lambda: h.readings.count() == 30 and h.pipeline.messages_done == 30, what="30 readings via amqtt")
        # Persistent session: readings published while the consumer is away arrive when it returns.
        h.consumer.stop()
        publish_all(
            pub,
            [(f"kawal/v1/AMQ-{i % 3}/telemetry", json.dumps(reading(i, 0)).encode()) for i in range(30, 60)],
        )
        h.consumer.start()
        wait_for(lambda: h.readings.count() == 60, what="the readings queued in the amqtt session")
        pub.disconnect()
    finally:
        broker.stop()


def test_small_inflight_window_and_mqtt_311(
    mosquitto_factory: Callable[..., Mosquitto], harness_factory: Callable[..., IngestHarness]
) -> None:
    """mosquitto's default max_inflight_messages is 20: acks must flow per batch, or ingest stalls."""
    broker = mosquitto_factory("max_inflight_messages 20\n")
    h = harness_factory(broker.url, mqtt_protocol="3.1.1")
    assert h.consumer.protocol == "3.1.1"
    pub = publisher(broker.port)
    publish_all(
        pub, [(f"kawal/v1/W-{i % 7}/telemetry", json.dumps(reading(i, 0)).encode()) for i in range(2000)]
    )
    wait_for(lambda: h.readings.count() == 2000, timeout=60, what="2000 readings through a window of 20")
    pub.disconnect()


def test_shared_subscription_splits_the_load(
    mosquitto: Mosquitto, tmp_path: Path, harness_factory: Callable[..., IngestHarness]
) -> None:
    a = harness_factory(mosquitto.url, name="a", mqtt_client_id="kawal-a", mqtt_share_group="kawal")
    b = harness_factory(mosquitto.url, name="b", mqtt_client_id="kawal-b", mqtt_share_group="kawal")
    assert a.consumer.topics[0] == "$share/kawal/kawal/v1/+/telemetry"
    pub = publisher(mosquitto.port)
    publish_all(
        pub, [(f"kawal/v1/S-{i % 10}/telemetry", json.dumps(reading(i, 0)).encode()) for i in range(400)]
    )
    wait_for(lambda: a.readings.count() + b.readings.count() == 400, what="400 readings across the group")
    assert a.readings.count() > 0 and b.readings.count() > 0
    pub.disconnect()


def test_killed_while_publishing_then_restarted_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """SIGKILL the ingest process while QoS 1 readings keep coming; restart it; every reading is stored
    exactly once: those before the crash, those in flight, and those published while it was down."""
    db = tmp_path / "kawal.db"
    total, trackers = 3000, 30
    pub = publisher(mosquitto.port)
    sent = threading.Event()
    published = 0

    def produce() -> None:
        nonlocal published
        for i in range(total // trackers):
            msgs = [
                (f"kawal/v1/K-{t:02d}/telemetry", json.dumps(reading(i, t)).encode()) for t in range(trackers)
            ]
            publish_all(pub, msgs)
            published += len(msgs)
            time.sleep(0.02)
        sent.set()

    proc = spawn_harness(mosquitto.url, db)
    producer = threading.Thread(target=produce)
    producer.start()
    wait_for(lambda: count_rows(db) > 500, what="some readings stored before the kill")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    at_kill = count_rows(db)
    wait_for(lambda: published >= at_kill + 600, what="readings published while down")
    proc = spawn_harness(mosquitto.url, db)
    try:
        producer.join(60)
        assert sent.is_set()
        wait_for(lambda: count_rows(db) >= total, what="every reading after the restart")
        c = SqliteDatabase(db).conn()
        assert c.execute("SELECT count(*) FROM readings").fetchone()[0] == total
        assert (
            c.execute("SELECT count(DISTINCT tracker_id || ':' || seq) FROM readings").fetchone()[0] == total
        )
        assert at_kill < total
    finally:
        proc.terminate()
        proc.wait(20)
        pub.disconnect()


# -- the harness as a process, for the kill test -------------------------------------------------------------


def count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    return int(SqliteDatabase(db).conn().execute("SELECT count(*) FROM readings").fetchone()[0])


def spawn_harness(mqtt_url: str, db: Path, influx_url: str | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tests.test_ingest_harness", "--mqtt", mqtt_url, "--db", str(db)]
    if influx_url:
        args += ["--influx", influx_url]
    log = open(db.parent / "harness.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent)
    ready = db.parent / "harness.ready"
    wait_for(
        lambda: (ready.exists() and ready.read_text() == str(proc.pid)) or proc.poll() is not None,
        timeout=30,
        what="the harness to subscribe",
    )
    assert proc.poll() is None, (db.parent / "harness.log").read_text()[-3000:]
    return proc


def main(argv: list[str] | None = None) -> int:
    import logging

    ap = argparse.ArgumentParser(description="Run the ingest components until SIGTERM (test harness).")
    ap.add_argument("--mqtt", required=True)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--influx")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(name)s %(message)s")
    h = IngestHarness(a.db, a.mqtt, a.influx).start()
    (a.db.parent / "harness.ready").write_text(str(os.getpid()))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    h.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
