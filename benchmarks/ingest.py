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
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

# The workload and MQTT helpers (benchmarks/ingest_workload.py) stay importable from here.
from benchmarks.ingest_workload import (  # noqa: F401
    BASE,
    T0,
    batched,
    create_session,
    destination,
    preload,
    trips_for,
    v5_client,
    wait_until,
    workload,
)
from devices.registry import TrackerRegistry
from ingest.front import MqttFront
from ingest.mqtt import InboundMessage, MqttConsumer
from ingest.pipeline import Detector, IngestPipeline, NullDetector
from ingest.readings import ReadingStore
from kawal.clock import WallClock
from kawal.metrics import Metrics
from kawal.settings import Settings
from storage.sqlite import SqliteDatabase
from tests.servers import Mosquitto, VictoriaMetrics


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


class Window:
    """Where a run's clock starts: its first message, so a consumer's start-up (the front's child process
    importing its modules) is not counted. The CPU of a child process is counted from there too."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.pid: int | None = None
        self.child_cpu = 0.0

    def mark(self, child_pid: int | None = None) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        if child_pid is not None:
            self.pid, self.child_cpu = child_pid, self._child_cpu(child_pid)

    def child_cpu_since(self) -> float:
        return 0.0 if self.pid is None else self._child_cpu(self.pid) - self.child_cpu

    @staticmethod
    def _child_cpu(pid: int) -> float:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)

    @staticmethod
    def scaled(seconds: float, n: int) -> float:
        """Time for n messages from the time between the first and the n-th (n - 1 intervals)."""
        return seconds * n / max(1, n - 1)


# -- runs --------------------------------------------------------------------------------------------------


def consume(
    broker: Mosquitto, client_id: str, msgs: list[tuple[str, bytes]], handle: Callable[[Any], None] | None = None
) -> tuple[float, float]:
    """Queue `msgs` for the persistent session `client_id`, then reconnect it and pass each message to `handle`.

    Returns (wall seconds from the first message until the last was handled, CPU seconds meanwhile).
    """
    create_session(broker.port, client_id)
    preload(broker.port, msgs)
    n = len(msgs)
    count = 0
    first = Window()
    last = [0.0]

    def on_message(client: Any, userdata: Any, m: Any) -> None:
        nonlocal count
        if count == 0:
            first.mark()
        if handle is not None:
            handle(m)
        count += 1
        if count == n:
            last[0] = time.perf_counter()

    c, props = v5_client(client_id)
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    wait_until(lambda: count >= n)
    cpu = time.process_time() - first.cpu
    c.disconnect()
    c.loop_stop()
    return first.scaled(last[0] - first.wall, n), cpu


def run_bare(
    broker: Mosquitto, msgs: list[tuple[str, bytes]], readings: int, batch: int, parse: bool = False
) -> Result:
    """paho counting messages (the ceiling), or also parsing each payload's JSON (a batch's floor)."""
    seconds, cpu = consume(broker, "bench-bare", msgs, (lambda m: orjson.loads(m.payload)) if parse else None)
    name = "bare paho subscriber + orjson.loads" if parse else "bare paho subscriber (count only)"
    return Result(f"{name} [{batch}]", len(msgs), readings, seconds, cpu)


def run_kawal(
    broker: Mosquitto,
    msgs: list[tuple[str, bytes]],
    workdir: Path,
    name: str,
    detector_factory: Callable[[], Detector],
    profile: bool,
    consumer_class: type[MqttConsumer] | type[MqttFront] = MqttConsumer,
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
    first = Window()

    def submit(m: InboundMessage) -> None:
        if not first.wall:
            first.mark(consumer.pid if isinstance(consumer, MqttFront) else None)
        box[0].submit(m)

    consumer = consumer_class(settings, broker.url, submit, metrics)
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
    consumer.start()
    wait_until(lambda: pipeline.messages_done >= n)
    elapsed = first.scaled(time.perf_counter() - first.wall, n)
    cpu = time.process_time() - first.cpu + first.child_cpu_since()
    consumer.stop()
    pipeline.stop()
    stored = store.count()
    expected = sum(len(orjson.loads(p)) if p[:1] == b"[" else 1 for _, p in msgs)
    assert stored == expected, (stored, expected)
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


def run_size(
    broker: Mosquitto, workdir: Path, a: argparse.Namespace, batch: int, i: int, engine: Callable[[], Detector] | None
) -> list[Result]:
    """One round at one batch size: the bare subscriber, then Kawal's ingest three ways."""
    msgs = batched(workload(a.messages, a.trackers), batch)
    tag = f"[{batch}] #{i}"
    out = [run_bare(broker, msgs, a.messages, batch)]
    if batch > 1:
        out.append(run_bare(broker, msgs, a.messages, batch, parse=True))
    out.append(run_kawal(broker, msgs, workdir, f"kawal in-process, NullDetector {tag}", NullDetector, a.profile))
    if engine is not None:
        out.append(run_kawal(broker, msgs, workdir, f"kawal in-process + detectors {tag}", engine, a.profile))
        front = f"kawal (MQTT front process) + detectors {tag}"
        out.append(run_kawal(broker, msgs, workdir, front, engine, a.profile, MqttFront))
    return out


def print_table(runs: dict[str, list[Result]], a: argparse.Namespace, batch: int) -> None:
    mine = {name: rs for name, rs in runs.items() if name.endswith(f"[{batch}]")}
    best = {name: max(rs, key=lambda r: r.rate) for name, rs in mine.items()}
    cpu = {name: sorted(r.cpu_us for r in rs)[len(rs) // 2] for name, rs in mine.items()}
    bare_name = next(iter(best))
    bare = best[bare_name]
    shape = "single-reading messages" if batch == 1 else f"messages of {batch} readings"
    print(
        f"\nIngest: {a.messages:,} readings in {shape} from {a.trackers} trackers at QoS 1 through one mosquitto "
        f"(max_inflight_messages {a.inflight}); best of {a.rounds} rounds\n"
    )
    print(f"{'run':<52} {'readings/s':>11} {'vs bare':>8} {'CPU µs/rd':>10} {'CPU vs bare':>12}")
    for name, r in best.items():
        ratio = cpu[bare_name] / cpu[name]
        print(f"{name:<52} {r.rate:>11,.0f} {r.rate / bare.rate:>8.0%} {cpu[name]:>10.1f} {ratio:>12.0%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000, help="readings per run")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 100], help="readings per message, one table each")
    ap.add_argument("--naive-messages", type=int, default=10_000)
    ap.add_argument("--trackers", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the best of each is kept")
    ap.add_argument("--inflight", type=int, default=20, help="mosquitto max_inflight_messages (its default: 20)")
    ap.add_argument("--profile", action="store_true", help="cProfile the Kawal ingest worker")
    ap.add_argument("--acks", action="store_true", help="the acknowledgement path alone (benchmarks/ingest_acks.py)")
    a = ap.parse_args(argv)
    if a.acks:
        from benchmarks import ingest_acks

        args = ["--messages", str(a.messages), "--rounds", str(a.rounds), "--inflight", str(a.inflight)]
        return ingest_acks.main(args)

    workdir = Path(tempfile.mkdtemp(prefix="kawal-bench-"))
    broker = Mosquitto(workdir / "mosquitto", extra_config=f"max_inflight_messages {a.inflight}\n").start()
    vm = VictoriaMetrics(workdir / "vm").start()
    runs: dict[str, list[Result]] = {}
    try:
        engine = engine_factory(a.trackers)
        for i in range(a.rounds):
            for batch in a.batch:
                for r in run_size(broker, workdir, a, batch, i, engine):
                    runs.setdefault(r.name.split(" #")[0], []).append(r)
                    print(f"  {r.name}: {r.rate:,.0f} readings/s, {r.cpu_us:.1f} CPU µs/reading", flush=True)
        naive = run_naive(broker, vm, workload(a.naive_messages, a.trackers))
    finally:
        broker.stop()
        vm.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for batch in a.batch:
        print_table(runs, a, batch)
    singles = [max(rs, key=lambda r: r.rate) for name, rs in runs.items() if name.endswith("[1]")]
    for r in singles:
        print(f"{r.name.split(' [')[0]:<52} {r.rate / naive.rate:>6.1f}x the naive writer")
    print(f"{naive.name:<52} {naive.rate:>11,.0f} readings/s, {naive.cpu_us:.1f} CPU µs/reading")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
