"""The embedded broker (kawal/broker.py): both kinds, real processes, real MQTT clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kawal import broker as broker_mod
from kawal.broker import BrokerError, EmbeddedBroker, mosquitto_config
from kawal.settings import Settings

KINDS = ["mosquitto", "amqtt"]


def _settings(kind: str, port: int = 0) -> Settings:
    return Settings.model_validate({"embedded_broker": kind, "embedded_mqtt_port": port})


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie awaiting its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


class Session:
    """Kawal's side: a persistent (clean_session=False) QoS 1 subscriber, MQTT 3.1.1 like amqtt needs."""

    def __init__(self, port: int, client_id: str = "kawal-test", topic: str = "kawal/v1/#") -> None:
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, bytes(msg.payload)))

    def payloads(self) -> set[bytes]:
        with self._lock:
            return {p for _, p in self.received}

    def wait_for(self, expected: set[bytes], timeout: float = 30.0) -> set[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not expected <= self.payloads():
            time.sleep(0.05)
        return expected - self.payloads()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_qos1(port: int, n: int, tracker: str = "TRK-1") -> set[bytes]:
    """Publish n QoS 1 messages and wait until the broker acknowledged every one."""
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{tracker}", protocol=mqtt.MQTTv311)
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    sent = set()
    infos = []
    for i in range(n):
        payload = f'{{"ts": {1_700_000_000 + i}, "seq": {i}}}'.encode()
        infos.append(pub.publish(f"kawal/v1/{tracker}/telemetry", payload, qos=1))
        sent.add(payload)
    for info in infos:
        info.wait_for_publish(30)
        assert info.is_published()
    pub.disconnect()
    pub.loop_stop()
    return sent


def _assert_queue_delivered(kind: str, workdir: Path, sent: set[bytes]) -> None:
    """A broker started again on `workdir` delivers every message `sent` to the waiting session."""
    b = EmbeddedBroker(_settings(kind), workdir)
    b.start()
    try:
        assert b.port is not None
        sub = Session(b.port)
        assert sub.wait_for(sent) == set()
        sub.close()
    finally:
        b.stop()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "mosquitto" and broker_mod.find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: run the README's test command, which installs it")
    return str(request.param)


@pytest.fixture
def started(kind: str, tmp_path: Path) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(_settings(kind), tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def test_round_trip_then_stop_leaves_nothing_running(started: EmbeddedBroker, kind: str) -> None:
    assert started.kind == kind
    assert started.url == f"mqtt://127.0.0.1:{started.port}"
    pid, port = started.pid, started.port
    assert pid is not None and port is not None and _alive(pid)
    sub = Session(port)
    sent = publish_qos1(port, 50)
    assert sub.wait_for(sent) == set()
    sub.close()
    started.stop()
    assert not _alive(pid)
    assert not started.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_protocol_versions(started: EmbeddedBroker, kind: str) -> None:
    """mosquitto speaks MQTT 5; amqtt 0.12 refuses it cleanly (CONNACK 'unsupported protocol version')."""
    assert started.protocol == ("5" if kind == "mosquitto" else "3.1.1")
    codes: list[object] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode, p: object) -> None:
        codes.append(rc)
        done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v5", protocol=mqtt.MQTTv5)
    c.on_connect = on_connect
    assert started.port is not None
    c.connect("127.0.0.1", started.port)
    c.loop_start()
    assert done.wait(10)
    c.loop_stop()
    c.disconnect()
    rc = codes[0]
    assert isinstance(rc, mqtt.ReasonCode)
    if kind == "mosquitto":
        assert not rc.is_failure
    else:
        assert rc.is_failure and "protocol" in str(rc).lower()


def test_queue_of_offline_session_survives_broker_restart(kind: str, tmp_path: Path) -> None:
    workdir = tmp_path / "broker"
    b = EmbeddedBroker(_settings(kind), workdir)
    b.start()
    assert b.port is not None
    Session(b.port).close()  # create the persistent session, then go offline like a stopped Kawal
    sent = publish_qos1(b.port, 300)
    b.stop()
    _assert_queue_delivered(kind, workdir, sent)


PARENT = """
import sys, time
from pathlib import Path
from kawal.broker import EmbeddedBroker
from kawal.settings import Settings
b = EmbeddedBroker(Settings(embedded_broker=sys.argv[1], embedded_mqtt_port=0), Path(sys.argv[2]))
b.start()
print(b.pid, b.port, flush=True)
time.sleep(600)
"""


def test_broker_dies_with_a_killed_parent_and_keeps_its_queue(kind: str, tmp_path: Path) -> None:
    """A SIGKILLed Kawal leaves no broker behind, and the broker saved what it had accepted."""
    workdir = tmp_path / "broker"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, kind, str(workdir)], stdout=subprocess.PIPE,
                              cwd=str(Path(__file__).resolve().parents[1]))
    try:
        assert parent.stdout is not None
        pid_s, port_s = parent.stdout.readline().split()
        pid, port = int(pid_s), int(port_s)
        assert _alive(pid)
        Session(port).close()
        sent = publish_qos1(port, 200)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone(pid), f"broker pid {pid} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    _assert_queue_delivered(kind, workdir, sent)


def test_fixed_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        b = EmbeddedBroker(_settings("amqtt", port), tmp_path / "broker")
        with pytest.raises(BrokerError, match=f"port {port}.*in use"):
            b.start()
        assert not b.running


def test_auto_choice_and_missing_mosquitto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    expected = "mosquitto" if broker_mod.find_mosquitto() else "amqtt"
    assert EmbeddedBroker(_settings("auto"), tmp_path).kind == expected
    monkeypatch.setattr(broker_mod, "find_mosquitto", lambda: None)
    assert EmbeddedBroker(_settings("auto"), tmp_path).kind == "amqtt"
    with pytest.raises(BrokerError, match="no mosquitto binary"):
        EmbeddedBroker(_settings("mosquitto"), tmp_path)


def test_mosquitto_config_keeps_a_long_queue(tmp_path: Path) -> None:
    conf = mosquitto_config("127.0.0.1", 1883, tmp_path)
    lines = dict(line.split(" ", 1) for line in conf.splitlines() if line and not line.startswith("#")
                 and " " in line)
    assert lines["persistence"] == "true"
    assert lines["persistence_location"] == f"{tmp_path}/"
    assert int(lines["max_inflight_messages"]) >= 1000
    assert int(lines["max_queued_messages"]) >= 1_000_000
    assert lines["max_queued_bytes"] == "0"


def test_no_orphan_after_clean_stop_from_another_thread(kind: str, tmp_path: Path) -> None:
    """start() and stop() called from short-lived threads (as a service might) still manage the child."""
    b = EmbeddedBroker(_settings(kind), tmp_path / "broker")
    t = threading.Thread(target=b.start)
    t.start()
    t.join()
    pid = b.pid
    assert pid is not None
    time.sleep(0.5)  # the thread that called start() is gone; the broker must still run
    assert _alive(pid), "the broker died with the thread that started it"
    t2 = threading.Thread(target=b.stop)
    t2.start()
    t2.join()
    assert _wait_gone(pid, 5)
    assert os.path.exists(tmp_path / "broker")
