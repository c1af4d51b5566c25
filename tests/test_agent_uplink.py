"""The agent in-process with gpiozero's mock pins, publishing to a real private Mosquitto: the retained status,
a seal change at once and only once, store and forward while the broker is away, and batches after it."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from devices.agent.agent import Agent
from tests.agent_harness import Observer, agent_config
from tests.servers import Mosquitto, free_port, wait_for
from tests.test_agent_parts import bounce


class Running:
    """An Agent on mock pins in a thread, with the contacts closed (sealed, tamper loop intact)."""

    def __init__(self, tmp_path: Path, port: int, **overrides: object) -> None:
        self.factory = MockFactory()
        self.agent = Agent(agent_config(tmp_path, port, **overrides), pin_factory=self.factory)
        self.factory.pin("GPIO17").drive_low()
        self.factory.pin("GPIO27").drive_low()
        assert self.agent.seal is not None
        seal = self.agent.seal
        wait_for(lambda: seal.state == "closed", timeout=5, what="sealed")
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(15)
        assert not self.thread.is_alive()


@pytest.fixture
def observer(mosquitto: Mosquitto) -> Iterator[Observer]:
    obs = Observer(mosquitto.port, "AGT-0001").start()
    yield obs
    obs.stop()


def test_status_and_one_seal_reading_per_opening(mosquitto: Mosquitto, observer: Observer, tmp_path: Path) -> None:
    run = Running(tmp_path, mosquitto.port, interval_s=3600.0, moving_interval_s=60.0)
    try:
        wait_for(lambda: "online" in observer.statuses(), timeout=15, what="online status")
        wait_for(lambda: len(observer.readings()) >= 1, timeout=15, what="the start-up reading")
        first = observer.readings()[0]
        assert (first["id"], first["seq"], first["seal"]) == ("AGT-0001", 0, "closed")
        assert "lat" not in first  # no GPS fix: no position, still a reading

        bounce(run.factory.pin("GPIO17"), end_low=False)
        wait_for(lambda: any(r["seal"] == "open" for r in observer.readings()), timeout=5, what="the opening")
        time.sleep(0.5)  # a second event from the bouncing would have arrived by now
        seals = [r["seal"] for r in observer.readings()]
        assert seals == ["closed", "open"]
        assert [r["seq"] for r in observer.readings()] == [0, 1]
        wait_for(
            lambda: run.agent.store.size() == 0 if run.thread.is_alive() else True,
            timeout=10,
            what="acknowledged readings leave the queue",
        )
    finally:
        run.stop()
    wait_for(lambda: observer.statuses()[-1:] == ["offline"], timeout=10, what="offline on a clean stop")


def test_broker_away_readings_queue_then_arrive_once_in_batches(
    mosquitto: Mosquitto, observer: Observer, tmp_path: Path
) -> None:
    run = Running(tmp_path, mosquitto.port, interval_s=0.2, moving_interval_s=0.2, batch_max=7)
    try:
        wait_for(lambda: len(observer.readings()) >= 3, timeout=15, what="live readings")
        mosquitto.stop()
        queued_before = run.agent.store.next_seq
        wait_for(lambda: run.agent.store.size() >= 25, timeout=30, what="readings queued while the broker is away")
        bounce(run.factory.pin("GPIO27"), end_low=False)  # tampering while offline is queued too
        wait_for(lambda: run.agent.store.size() >= 30, timeout=30, what="more queued readings")
        assert run.agent.store.next_seq > queued_before + 25
        observer.subscribed.clear()  # before the broker is back: the observer may reconnect at once
        mosquitto.start()
        wait_for(observer.subscribed.is_set, timeout=20, what="observer back")
        total = run.agent.store.next_seq
        wait_for(
            lambda: {r["seq"] for r in observer.readings()} >= set(range(total)),
            timeout=30,
            what="every queued reading",
        )

        # Acknowledged readings leave the queue: what stays was taken after them (the agent goes on).
        def queued_seqs() -> list[int]:
            return [json.loads(body)["seq"] for _, body in run.agent.store.peek(0, 1000)]

        wait_for(lambda: all(seq >= total for seq in queued_seqs()), timeout=30, what="the PUBACKs processed")
    finally:
        run.stop()
    readings = observer.readings()
    seqs = [r["seq"] for r in readings]
    assert set(seqs) == set(range(max(seqs) + 1))  # none lost
    batches = observer.batches()
    assert batches, "the backlog was not sent in batches"
    assert max(len(b) for b in batches) == 7  # up to batch_max readings per message
    assert any(r.get("seal") == "tampered" for r in readings)


def _tls_files(d: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1, made with openssl."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=Kawal test CA",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


def test_mqtts_with_the_provisioned_ca(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed")
    ca, cert, key = _tls_files(tmp_path / "tls")
    tls_port = free_port()
    broker = mosquitto_factory(f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n")
    observer = Observer(broker.port, "AGT-0001").start()  # on the plain listener
    run = Running(
        tmp_path,
        tls_port,
        broker_url=f"mqtts://127.0.0.1:{tls_port}",
        ca_file=ca,
        interval_s=3600.0,
        moving_interval_s=60.0,
    )
    try:
        wait_for(lambda: len(observer.readings()) >= 1, timeout=20, what="a reading over TLS")
        assert observer.readings()[0]["seal"] == "closed"
    finally:
        run.stop()
        observer.stop()
    # Without the CA the broker's certificate is not trusted: nothing is sent.
    untrusted = Running(
        tmp_path / "other",
        tls_port,
        broker_url=f"mqtts://127.0.0.1:{tls_port}",
        interval_s=3600.0,
        moving_interval_s=60.0,
    )
    try:
        time.sleep(2.0)
        assert not untrusted.agent.uplink.connected.is_set()
        assert untrusted.agent.store.size() == 1  # the start-up reading waits in the queue
    finally:
        untrusted.stop()


def test_full_queue_drops_the_oldest_and_says_so(mosquitto: Mosquitto, observer: Observer, tmp_path: Path) -> None:
    mosquitto.stop()  # the observer's persistent session waits in the broker's store
    run = Running(tmp_path, mosquitto.port, interval_s=0.2, moving_interval_s=0.2, queue_max=10)
    try:
        wait_for(lambda: run.agent.store.dropped >= 10, timeout=30, what="drops from the full queue")
        observer.subscribed.clear()
        mosquitto.start()
        wait_for(observer.subscribed.is_set, timeout=20, what="observer back")
        wait_for(lambda: len(observer.readings()) >= 12, timeout=30, what="readings after the outage")
        dropped = run.agent.store.dropped
    finally:
        run.stop()
    readings = observer.readings()
    seqs = sorted({r["seq"] for r in readings})
    # The oldest went first, and nothing after them was lost. (A reading already on its way when the full queue
    # made room is counted as dropped and may still arrive, hence <=.)
    assert 10 <= seqs[0] <= dropped
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    # Each reading says how many had been dropped when it was taken; the latest say all of them.
    assert max(r["dropped"] for r in readings) == dropped
    assert all(r["dropped"] <= r["seq"] for r in readings)
