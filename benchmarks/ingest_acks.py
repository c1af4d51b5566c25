"""What Kawal's manual acknowledgements cost: MqttConsumer and a worker that batches like the pipeline and
only acknowledges (paho's public client.ack after each batch), vs paho acknowledging each message on receipt.

    python -m benchmarks.ingest_acks [--messages 100000] [--rounds 3] [--inflight 20]
"""

from __future__ import annotations

import argparse
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as mqtt

from benchmarks.ingest import Result
from benchmarks.ingest_workload import create_session, preload, workload
from ingest.mqtt import InboundMessage, MqttConsumer
from kawal.metrics import Metrics
from kawal.settings import Settings
from tests.servers import Mosquitto


class AutoAckConsumer(MqttConsumer):
    """For comparison only: paho acknowledges each message itself on receipt (what Kawal must not do)."""

    def _new_client(self) -> mqtt.Client:
        client = super()._new_client()
        client.manual_ack_set(False)
        return client

    def ack_many(self, msgs: Sequence[InboundMessage]) -> None:
        return None


def run_acks(broker: Mosquitto, msgs: list[tuple[str, bytes]], consumer_class: type[MqttConsumer], i: int) -> Result:
    """MqttConsumer and a worker that batches like the pipeline and only acknowledges: the ack path alone."""
    client_id = f"bench-acks-{uuid.uuid4().hex[:12]}"
    create_session(broker.port, client_id)
    preload(broker.port, msgs)
    settings = Settings(mqtt_url=broker.url, mqtt_client_id=client_id)
    inbox: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
    consumer = consumer_class(settings, broker.url, inbox.put, Metrics())
    n = len(msgs)
    done = 0

    def worker() -> None:
        nonlocal done
        while done < n:
            batch = [inbox.get()]
            while len(batch) < 2000:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            consumer.ack_many(batch)
            done += len(batch)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    c0, t0 = time.process_time(), time.perf_counter()
    consumer.start()
    thread.join(600)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    consumer.stop()
    label = "Kawal: client.ack after each batch" if consumer_class is MqttConsumer else "paho acks on receipt"
    return Result(f"acks: {label} #{i}", n, n, elapsed, cpu)


def print_acks(runs: dict[str, list[Result]], a: argparse.Namespace) -> None:
    print(f"\nAcknowledging {a.messages:,} QoS 1 messages in pipeline-sized batches; medians of {a.rounds} rounds\n")
    print(f"{'run':<45} {'messages/s':>11} {'CPU µs/msg':>11}")
    for name, rs in runs.items():
        rate = sorted(r.rate for r in rs)[len(rs) // 2]
        cpu = sorted(r.cpu_us for r in rs)[len(rs) // 2]
        print(f"{name:<45} {rate:>11,.0f} {cpu:>11.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--trackers", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=20, help="mosquitto max_inflight_messages (its default: 20)")
    a = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kawal-bench-"))
    broker = Mosquitto(workdir / "mosquitto", extra_config=f"max_inflight_messages {a.inflight}\n").start()
    runs: dict[str, list[Result]] = {}
    try:
        msgs = workload(a.messages, a.trackers)
        for i in range(a.rounds):
            for r in (run_acks(broker, msgs, MqttConsumer, i), run_acks(broker, msgs, AutoAckConsumer, i)):
                runs.setdefault(r.name.split(" #")[0], []).append(r)
                print(f"  {r.name}: {r.rate:,.0f} messages/s, {r.cpu_us:.1f} CPU µs/message", flush=True)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print_acks(runs, a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
