"""The cost of the trackers' latest-state upkeep on ingest, for benchmarks/crates.py: ReadingStore.insert
with and without it, and the full ingest path of benchmarks/ingest.py with and without it."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from devices.reading import Reading
from ingest.readings import ReadingStore
from storage.sqlite import SqliteDatabase


class Stateless(ReadingStore):
    """ReadingStore without the trackers' latest-state upkeep: storage as it was before the change."""

    def advance_state(self, conn: Any, new: Any, received_at: float) -> None:
        return None


def insert_cost(workdir: Path, t0: float, rounds: int = 5) -> list[str]:
    """ReadingStore.insert per reading, with and without the state upkeep, for two batch shapes."""

    def batches(n_batches: int, per: int, trackers: int) -> list[list[Reading]]:
        out, i = [], 0
        for _ in range(n_batches):
            b = []
            for _ in range(per):
                t = i % trackers
                b.append(
                    Reading(f"TRK-{t:05d}", t0 + i, -7.5 + t * 1e-4, 112.2, seq=i, acc=6.0, bat=80.0, seal="closed")
                )
                i += 1
            out.append(b)
        return out

    shapes = [
        ("batches of 20 readings from 20 trackers", batches(1000, 20, 500)),
        ("batches of 2000 readings from 500 trackers", batches(20, 2000, 500)),
    ]
    lines = ["ReadingStore.insert, µs per reading (median of rounds; one transaction per batch)"]
    for name, bs in shapes:
        res: dict[str, list[float]] = {"without state": [], "with state": []}
        for r in range(rounds):
            order = [("without state", Stateless), ("with state", ReadingStore)]
            for label, cls in order if r % 2 == 0 else order[::-1]:
                path = workdir / f"ins-{cls.__name__}-{r}-{len(bs)}.db"  # a fresh file for every run
                db = SqliteDatabase(path)
                store = cls(db)
                total = sum(len(b) for b in bs)
                t0 = time.perf_counter()
                for b in bs:
                    with db.write() as c:
                        store.insert(c, b, t0)
                res[label].append((time.perf_counter() - t0) / total * 1e6)
                db.conn().close()
        w, s = statistics.median(res["without state"]), statistics.median(res["with state"])
        lines.append(f"  {name:<44} without {w:6.1f}   with {s:6.1f}   (+{s - w:.1f} µs, {s / w - 1:+.0%})")
    return lines


def ingest_run(
    broker: Any, msgs: list[tuple[str, bytes]], workdir: Path, client_id: str, store_cls: type[ReadingStore]
) -> tuple[float, float]:
    """The full ingest path of benchmarks/ingest.py (a persistent session drained by MqttConsumer +
    IngestPipeline with the NullDetector), on a fresh database: (readings/s, CPU µs per reading)."""
    from benchmarks.ingest import create_session, preload, wait_until
    from devices.registry import TrackerRegistry
    from ingest.mqtt import MqttConsumer
    from ingest.pipeline import IngestPipeline, NullDetector
    from kawal.clock import WallClock
    from kawal.metrics import Metrics
    from kawal.settings import Settings

    create_session(broker.port, client_id)
    preload(broker.port, msgs)
    db = SqliteDatabase(workdir / f"{client_id}.db")
    store = store_cls(db)
    metrics = Metrics()
    box: list[IngestPipeline] = []
    settings = Settings(mqtt_url=broker.url, mqtt_client_id=client_id, db=db.path)
    consumer = MqttConsumer(settings, broker.url, lambda m: box[0].submit(m), metrics)
    box.append(IngestPipeline(db, store, TrackerRegistry(db), NullDetector(), WallClock(), metrics, consumer.ack))
    n = len(msgs)
    box[0].start()
    c0, t0 = time.process_time(), time.perf_counter()
    consumer.start()
    wait_until(lambda: box[0].messages_done >= n)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    consumer.stop()
    box[0].stop()
    assert store.count() == n, (store.count(), n)
    if store_cls is ReadingStore:  # the state it kept is what the track says
        for t in ("TRK-00000", "TRK-00001"):
            st, latest = store.state(t), store.latest(t)
            assert st is not None and latest is not None and st.last_seen == latest.ts, (st, latest)
    return n / elapsed, cpu / n * 1e6


def ingest_cost(workdir: Path, messages: int, trackers: int, rounds: int, inflight: int) -> list[str]:
    """Full-path readings/s with and without the state upkeep, interleaved rounds on one mosquitto."""
    from benchmarks.ingest import workload
    from tests.servers import Mosquitto

    broker = Mosquitto(workdir / "mosquitto", extra_config=f"max_inflight_messages {inflight}\n").start()
    msgs = workload(messages, trackers)
    res: dict[str, list[tuple[float, float]]] = {"without state": [], "with state": []}
    try:
        for r in range(rounds):
            order = [("without state", Stateless), ("with state", ReadingStore)]
            for label, cls in order if r % 2 == 0 else order[::-1]:
                rate, cpu = ingest_run(broker, msgs, workdir, f"bench-crates-{cls.__name__}-{r}", cls)
                res[label].append((rate, cpu))
                print(f"  ingest round {r}, {label}: {rate:,.0f} readings/s, {cpu:.1f} CPU µs/reading", flush=True)
    finally:
        broker.stop()
    lines = [
        f"Full ingest path (MQTT QoS 1 -> MqttConsumer -> IngestPipeline -> SQLite, NullDetector), "
        f"{messages:,} single-reading messages from {trackers} trackers, max_inflight_messages {inflight}, "
        f"{rounds} interleaved rounds"
    ]
    for label, rs in res.items():
        rates = sorted(x[0] for x in rs)
        cpus = sorted(x[1] for x in rs)
        lines.append(
            f"  {label:<14} best {rates[-1]:>8,.0f} readings/s, median {statistics.median(rates):>8,.0f};"
            f" CPU µs/reading median {statistics.median(cpus):.1f} (range {cpus[0]:.1f}-{cpus[-1]:.1f})"
        )
    return lines
