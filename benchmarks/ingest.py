"""Ingest throughput: bare paho subscriber vs. Kawal's ingest path vs. a naive per-message writer.

    python -m benchmarks.ingest [--messages 100000] [--naive-messages 20000] [--inflight 20] [--profile]
    python -m benchmarks.ingest --acks   # the acknowledgement path alone

One private Mosquitto serves every run. For each run the consumer's persistent session is created first,
then every message is published at QoS 1 into it while the consumer is away, and the clock runs from the
consumer's (re)connection until the last message is handled. So each consumer drains the same queue as
fast as it can, and the publisher's speed is not part of any figure.

Runs:
  bare    paho subscriber (MQTT 5, QoS 1, auto-ack) that only counts messages: the ceiling for Python.
  kawal   MqttConsumer + IngestPipeline (decode, validate, dedup, one SQLite transaction per batch, then ack)
          with the NullDetector, and with the real DetectionEngine on trips for every tracker.
  acks    (--acks only) MqttConsumer and a worker that batches like the pipeline and only acknowledges, vs
          paho acknowledging on receipt: what Kawal's manual acks (paho's public client.ack) cost.
  naive   per message: json.loads, pydantic NativeReading, influxdb-client Point, synchronous write to a
          private VictoriaMetrics, inside on_message.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

# The workload and MQTT helpers (benchmarks/ingest_workload.py) stay importable from here.
from benchmarks.ingest_workload import (  # noqa: F401
    BASE,
    T0,
    create_session,
    destination,
    preload,
    trips_for,
    v5_client,
    wait_until,
    workload,
)
from devices.registry import TrackerRegistry
from ingest.mqtt import InboundMessage, MqttConsumer
from ingest.pipeline import Detector, IngestPipeline, NullDetector
from ingest.readings import ReadingStore
from kawal.clock import WallClock
from kawal.metrics import Metrics
from kawal.settings import Settings
from storage.sqlite import SqliteDatabase
from tests.servers import Mosquitto, VictoriaMetrics


class AutoAckConsumer(MqttConsumer):
    """For comparison only: paho acknowledges each message itself on receipt (what Kawal must not do)."""

    def _new_client(self) -> mqtt.Client:
        client = super()._new_client()
        client.manual_ack_set(False)
        return client

    def ack_many(self, msgs: Sequence[InboundMessage]) -> None:
        return None


@dataclass
class Result:
    name: str
    messages: int
    readings: int
    seconds: float  # wall clock, from (re)connecting until the last message is handled
    cpu: float  # CPU seconds of this process (every thread) over the same window

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else math.inf

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per reading: unlike wall time, barely affected by other load on the machine."""
        return self.cpu / self.readings * 1e6


# -- runs --------------------------------------------------------------------------------------------------


def consume(
    broker: Mosquitto, client_id: str, msgs: list[tuple[str, bytes]], handle: Callable[[Any], None] | None = None
) -> tuple[float, float]:
    """Queue `msgs` for the persistent session `client_id`, then reconnect it and pass each message to `handle`.

    Returns (wall seconds from the reconnection until the last message was handled, CPU seconds meanwhile).
    """
    create_session(broker.port, client_id)
    preload(broker.port, msgs)
    n = len(msgs)
    count = 0
    last = [0.0]

    def on_message(client: Any, userdata: Any, m: Any) -> None:
        nonlocal count
        if handle is not None:
            handle(m)
        count += 1
        if count == n:
            last[0] = time.perf_counter()

    c, props = v5_client(client_id)
    c.on_message = on_message
    c0, t0 = time.process_time(), time.perf_counter()
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    wait_until(lambda: count >= n)
    cpu = time.process_time() - c0
    c.disconnect()
    c.loop_stop()
    return last[0] - t0, cpu


def run_bare(broker: Mosquitto, msgs: list[tuple[str, bytes]]) -> Result:
    seconds, cpu = consume(broker, "bench-bare", msgs)
    return Result("bare paho subscriber (count only)", len(msgs), len(msgs), seconds, cpu)


def run_kawal(
    broker: Mosquitto,
    msgs: list[tuple[str, bytes]],
    workdir: Path,
    name: str,
    detector_factory: Callable[[], Detector],
    profile: bool,
    consumer_class: type[MqttConsumer] = MqttConsumer,
) -> Result:
    # A fresh session and database per run: a reused one would find every reading already stored.
    client_id = f"bench-kawal-{uuid.uuid4().hex[:12]}"
    create_session(broker.port, client_id)
    preload(broker.port, msgs)
    db_path = workdir / f"{client_id}.db"
    settings = Settings(mqtt_url=broker.url, mqtt_client_id=client_id, db=db_path)
    metrics = Metrics()
    db = SqliteDatabase(db_path)
    store = ReadingStore(db)
    box: list[IngestPipeline] = []
    consumer = consumer_class(settings, broker.url, lambda m: box[0].submit(m), metrics)
    pipeline = IngestPipeline(db, store, TrackerRegistry(db), detector_factory(), WallClock(), metrics, consumer.ack)
    box.append(pipeline)
    prof = cProfile.Profile() if profile else None
    if prof is not None:
        handle = pipeline._handle

        def profiled(batch: list[InboundMessage]) -> None:
            prof.runcall(handle, batch)

        pipeline._handle = profiled  # type: ignore[method-assign]
    n = len(msgs)
    pipeline.start()
    c0, t0 = time.process_time(), time.perf_counter()
    consumer.start()
    wait_until(lambda: pipeline.messages_done >= n)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    consumer.stop()
    pipeline.stop()
    stored = store.count()
    assert stored == n, (stored, n)
    batches = metrics.registry.get_sample_value("kawal_ingest_batch_seconds_count") or 1
    print(f"  ({name}: {n / batches:.0f} messages per batch on average)", flush=True)
    if prof is not None:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
        print(f"\n--- cProfile of the ingest worker ({name}) ---\n{out.getvalue()}")
    return Result(name, n, stored, elapsed, cpu)


def run_naive(broker: Mosquitto, vm: VictoriaMetrics, msgs: list[tuple[str, bytes]]) -> Result:
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    from devices.wire import NativeReading

    influx = InfluxDBClient(url=vm.url, token="", org="kawal")
    write_api = influx.write_api(write_options=SYNCHRONOUS)

    def write(m: Any) -> None:
        tracker_id = m.topic.split("/")[2]
        body = json.loads(m.payload)
        r = NativeReading.model_validate(body).to_reading(tracker_id)
        p = Point("kawal_reading").tag("tracker_id", r.tracker_id).time(int(r.ts * 1000), WritePrecision.MS)
        for f in ("lat", "lon", "acc", "spd", "hdg", "bat"):
            v = getattr(r, f)
            if v is not None:
                p = p.field(f, v)
        if r.seq is not None:
            p = p.field("seq", r.seq)
        write_api.write(bucket="kawal", record=p, write_precision=WritePrecision.MS)  # type: ignore[arg-type]

    seconds, cpu = consume(broker, "bench-naive", msgs, write)
    influx.close()
    return Result("naive: json+pydantic+Point+sync write", len(msgs), len(msgs), seconds, cpu)


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


def engine_factory(trackers: int) -> Callable[[], Detector] | None:
    try:
        from anomaly.engine import DetectionEngine
    except ImportError:
        return None
    trips = trips_for(trackers)
    raised: list[object] = []

    def make() -> Detector:
        engine = DetectionEngine(sink=raised.append)
        engine.set_trips(trips)
        return engine

    return make


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--naive-messages", type=int, default=10_000)
    ap.add_argument("--trackers", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the best of each is kept")
    ap.add_argument("--inflight", type=int, default=20, help="mosquitto max_inflight_messages (its default: 20)")
    ap.add_argument("--profile", action="store_true", help="cProfile the Kawal ingest worker")
    ap.add_argument(
        "--acks",
        action="store_true",
        help="only compare the cost of acknowledging: after each batch vs paho acking on receipt",
    )
    a = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="kawal-bench-"))
    broker = Mosquitto(workdir / "mosquitto", extra_config=f"max_inflight_messages {a.inflight}\n").start()
    vm = VictoriaMetrics(workdir / "vm").start()
    runs: dict[str, list[Result]] = {}
    try:
        msgs = workload(a.messages, a.trackers)
        engine = engine_factory(a.trackers)
        for i in range(a.rounds):
            if a.acks:
                for r in (run_acks(broker, msgs, MqttConsumer, i), run_acks(broker, msgs, AutoAckConsumer, i)):
                    runs.setdefault(r.name.split(" #")[0], []).append(r)
                    print(f"  {r.name}: {r.rate:,.0f} messages/s, {r.cpu_us:.1f} CPU µs/message", flush=True)
                continue
            for r in (
                run_bare(broker, msgs),
                run_kawal(broker, msgs, workdir, f"kawal ingest, NullDetector #{i}", NullDetector, a.profile),
                *(
                    [run_kawal(broker, msgs, workdir, f"kawal ingest + DetectionEngine #{i}", engine, a.profile)]
                    if engine is not None
                    else []
                ),
            ):
                runs.setdefault(r.name.split(" #")[0], []).append(r)
                print(f"  {r.name}: {r.rate:,.0f} readings/s, {r.cpu_us:.1f} CPU µs/reading", flush=True)
        if a.acks:
            print_acks(runs, a)
            return 0
        naive = run_naive(broker, vm, workload(a.naive_messages, a.trackers))
        runs[naive.name] = [naive]
    finally:
        broker.stop()
        vm.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    best = {name: max(rs, key=lambda r: r.rate) for name, rs in runs.items()}
    cpu = {name: sorted(r.cpu_us for r in rs)[len(rs) // 2] for name, rs in runs.items()}
    bare_name = next(iter(best))
    bare, naive = best[bare_name], best[naive.name]
    print(
        f"\nIngest: {a.messages:,} single-reading JSON messages from {a.trackers} trackers at QoS 1 through "
        f"one mosquitto (max_inflight_messages {a.inflight}); best of {a.rounds} rounds\n"
    )
    print(f"{'run':<40} {'readings/s':>11} {'vs bare':>8} {'vs naive':>9} {'CPU µs/rd':>10} {'CPU vs bare':>12}")
    for name, r in best.items():
        print(
            f"{name:<40} {r.rate:>11,.0f} {r.rate / bare.rate:>8.0%} {r.rate / naive.rate:>8.1f}x "
            f"{cpu[name]:>10.1f} {cpu[bare_name] / cpu[name]:>12.0%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
