"""The MQTT front process (ingest/front.py) against a real Mosquitto, with the real pipeline and SQLite.

Readings pass from the child process to the pipeline and are acknowledged only once stored; a child killed
mid-stream is restarted and the broker redelivers what it had not acknowledged; a service killed outright
takes its child with it; the child's log lines reach the service's logging.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devices.registry import TrackerRegistry
from ingest.front import MqttFront
from ingest.mqtt import InboundMessage
from ingest.pipeline import IngestPipeline, NullDetector
from ingest.readings import ReadingStore
from kawal.clock import WallClock
from kawal.metrics import Metrics
from kawal.procs import free_port
from kawal.settings import Settings
from storage.sqlite import SqliteDatabase
from tests.servers import Mosquitto, wait_for

T0 = time.time() - 3600.0


class FrontHarness:
    """MqttFront -> IngestPipeline -> SQLite, wired as kawal/service.py does."""

    def __init__(self, db_path: Path, mqtt_url: str, client_id: str = "front-test") -> None:
        self.settings = Settings(mqtt_url=mqtt_url, mqtt_client_id=client_id, db=db_path)
        self.metrics = Metrics()
        self.db = SqliteDatabase(db_path)
        self.readings = ReadingStore(self.db)
        self.received: list[InboundMessage] = []
        self.front = MqttFront(self.settings, mqtt_url, self._submit, self.metrics)
        self.pipeline = IngestPipeline(
            self.db, self.readings, TrackerRegistry(self.db), NullDetector(), WallClock(), self.metrics, self.front.ack
        )

    def _submit(self, msg: InboundMessage) -> None:
        self.received.append(msg)
        self.pipeline.submit(msg)

    def start(self) -> FrontHarness:
        self.pipeline.start()
        self.front.start()
        assert self.front.subscribed.wait(30), self.front.reason
        return self

    def stop(self) -> None:
        self.pipeline.stop(drain=True)
        self.front.stop()


def publish(port: int, lines: list[str], topic: str = "kawal/v1/TRK-F1/telemetry") -> None:
    """Each line one QoS 1 message, through mosquitto_pub (a client Kawal did not write)."""
    subprocess.run(
        ["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, "-l"],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        timeout=60,
    )


def readings(start: int, n: int) -> list[str]:
    return [
        json.dumps({"ts": T0 + i, "seq": i, "lat": -7.5, "lon": 112.2 + i * 1e-5, "seal": "closed"})
        for i in range(start, start + n)
    ]


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto").start()
    yield b
    b.stop()


def test_readings_pass_through_the_child_and_are_acknowledged_once_stored(tmp_path: Path, broker: Mosquitto) -> None:
    h = FrontHarness(tmp_path / "k.db", broker.url).start()
    try:
        assert h.front.pid is not None and h.front.pid != os.getpid()
        assert h.metrics.registry.get_sample_value("kawal_mqtt_connected") == 1
        publish(broker.port, readings(0, 500))
        wait_for(lambda: h.readings.count() == 500, 30, "500 readings stored")
        wait_for(lambda: h.pipeline.messages_done == 500, 10, "500 messages handled")
    finally:
        h.stop()
    assert h.metrics.registry.get_sample_value("kawal_mqtt_connected") == 0
    # Every message was acknowledged: the same persistent session gets nothing again.
    again = FrontHarness(tmp_path / "k.db", broker.url).start()
    try:
        time.sleep(1.0)
        assert again.received == []
    finally:
        again.stop()


def test_a_killed_child_is_restarted_and_nothing_is_lost(tmp_path: Path, broker: Mosquitto) -> None:
    h = FrontHarness(tmp_path / "k.db", broker.url)
    h.front.start()  # no pipeline yet: the messages wait unacknowledged in the service process
    try:
        assert h.front.subscribed.wait(30), h.front.reason
        first = h.front.pid
        publish(broker.port, readings(0, 200))
        wait_for(lambda: len(h.received) == 200, 30, "200 messages relayed")
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: h.front.pid != first and h.front.subscribed.is_set(), 30, "a new child subscribed")
        publish(broker.port, readings(200, 100))
        h.pipeline.start()
        # The broker redelivers the 200 the dead child never acknowledged; acks of the old child's messages
        # are not sent to the new one (their packet ids belong to the old connection).
        wait_for(lambda: h.readings.count() == 300, 30, "300 distinct readings stored")
        wait_for(lambda: h.pipeline.messages_done == len(h.received), 10, "everything relayed is handled")
        assert len(h.received) >= 500
    finally:
        h.stop()
    again = FrontHarness(tmp_path / "k.db", broker.url).start()
    try:
        time.sleep(1.0)
        assert again.received == [], "what the new child relayed was acknowledged"
    finally:
        again.stop()


def test_the_child_dies_with_the_service(tmp_path: Path, broker: Mosquitto) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from tests.test_mqtt_front import FrontHarness
        h = FrontHarness(Path({str(tmp_path / "k.db")!r}), {broker.url!r}).start()
        print(h.front.pid, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent
    )
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        assert psutil.pid_exists(child)
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not _running(child), 10, "the MQTT child exits with its service")
    finally:
        proc.kill()


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_childs_log_lines_and_reasons_reach_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    h = FrontHarness(tmp_path / "k.db", f"mqtt://127.0.0.1:{port}")
    caplog.set_level(logging.WARNING)
    h.front.start()
    try:
        wait_for(lambda: "connection refused" in (h.front.reason or ""), 20, "the child's reason relayed")
        wait_for(
            lambda: any(r.name == "ingest.mqtt" and "connection refused" in r.getMessage() for r in caplog.records),
            20,
            "the child's warning logged in the service",
        )
        assert not h.front.subscribed.is_set()
    finally:
        h.front.stop()
