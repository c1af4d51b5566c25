"""Readings stored per second: SQLite vs PostgreSQL, on this machine, in one run.

    python -m benchmarks.storage [--readings 60000] [--trackers 500] [--batches 100,500,2000] [--dup 0.1]

Each run stores the same readings through `ReadingStore.insert` (the track, duplicates dropped, and the
trackers' latest state), one write transaction per batch, as the ingest worker does; a fraction `--dup`
of each batch repeats readings already stored (store-and-forward resends). Every run starts on an empty
store: a SQLite file in a temporary folder, and a fresh database on the PostgreSQL at KAWAL_TEST_PG
(default postgresql://postgres@127.0.0.1:5432/postgres, as the tests use), dropped afterwards.

Besides readings/s it reports, for PostgreSQL, where the time goes: the share of wall time the client
spent on CPU (the rest is waiting for the server: its work, the round trips, the commit's WAL flush) and
the latency of one small commit. The last line is the whole result as JSON, with the load average: on a
machine shared with other work, a round trip to the server waits for a CPU, and that costs PostgreSQL
more than SQLite, which runs inside the process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devices.reading import Reading, SealState
from ingest.readings import ReadingStore
from storage import Database, open_database
from tests.backends import PG_ADMIN_URL, postgres_database, postgres_problem

T0 = 1_732_060_800.0
BASE = (-7.546, 112.233)  # KPU Jombang warehouse


def make_readings(n: int, trackers: int, seed: int = 7) -> list[Reading]:
    """A fleet reporting every 30 s: round i has one reading per tracker, moving a little each time."""
    rnd = random.Random(seed)
    out: list[Reading] = []
    i = 0
    while len(out) < n:
        for t in range(trackers):
            if len(out) == n:
                break
            lat = BASE[0] + 0.0001 * i + rnd.uniform(-1e-5, 1e-5)
            lon = BASE[1] + 0.0001 * i + rnd.uniform(-1e-5, 1e-5)
            seal: SealState | None = "closed" if i % 10 else None
            out.append(Reading(f"TRK-{t:05d}", T0 + 30 * i, lat, lon, i, 8.0, 11.5, 90.0, 80.0 - i * 0.01, seal))
        i += 1
    return out


def batches(readings: list[Reading], size: int, dup: float, seed: int = 11) -> list[list[Reading]]:
    rnd = random.Random(seed)
    out: list[list[Reading]] = []
    for lo in range(0, len(readings), size):
        batch = readings[lo : lo + size]
        if dup > 0 and lo:  # resends of readings stored before
            batch = batch + rnd.sample(readings[:lo], min(lo, int(len(batch) * dup)))
        out.append(batch)
    return out


def store_all(db: Database, work: list[list[Reading]]) -> tuple[int, float, float]:
    """(readings stored, wall seconds, client CPU seconds)."""
    store = ReadingStore(db)
    stored = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in work:
        with db.write() as c:
            stored += len(store.insert(c, batch, time.time()))
    return stored, time.perf_counter() - wall, time.process_time() - cpu


def commit_latency_ms(db: Database, n: int = 50) -> float:
    """The median time of a transaction that writes one small row: mostly the commit's durable flush."""
    times: list[float] = []
    for i in range(n):
        t = time.perf_counter()
        with db.write() as c:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                ("bench", str(i)),
            )
        times.append(time.perf_counter() - t)
    return sorted(times)[n // 2] * 1000


@contextmanager
def sqlite_store() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="kawal-bench-") as d:
        yield str(Path(d) / "kawal.db")


def run(kind: str, target: Callable[[], Any], work: list[list[Reading]], expected: int) -> dict[str, Any]:
    with target() as where:
        db = open_database(where)
        try:
            stored, wall, cpu = store_all(db, work)
            assert stored == expected, (kind, stored, expected)
            latency = commit_latency_ms(db)
        finally:
            db.close()
    return {
        "readings_per_s": round(stored / wall),
        "seconds": round(wall, 3),
        "client_cpu_share": round(cpu / wall, 3),
        "commit_ms": round(latency, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=60_000)
    ap.add_argument("--trackers", type=int, default=500)
    ap.add_argument("--batches", default="100,500,2000", help="batch sizes (readings per transaction)")
    ap.add_argument("--dup", type=float, default=0.1, help="share of each batch that repeats stored readings")
    args = ap.parse_args()
    problem = postgres_problem()
    if problem:
        raise SystemExit(problem)
    readings = make_readings(args.readings, args.trackers)
    results: dict[str, Any] = {"readings": args.readings, "trackers": args.trackers, "dup": args.dup, "runs": []}
    print(f"{args.readings} readings of {args.trackers} trackers, {args.dup:.0%} resent; PostgreSQL {PG_ADMIN_URL}")
    print(f"{'batch':>6} {'backend':>9} {'readings/s':>11} {'client CPU':>11} {'commit ms':>10}")
    for size in (int(x) for x in args.batches.split(",")):
        work = batches(readings, size, args.dup)
        row: dict[str, Any] = {"batch": size}
        for kind, target in (("sqlite", sqlite_store), ("postgres", postgres_database)):
            r = row[kind] = run(kind, target, work, len(readings))
            print(f"{size:>6} {kind:>9} {r['readings_per_s']:>11} {r['client_cpu_share']:>11.0%} {r['commit_ms']:>10}")
        row["postgres_vs_sqlite"] = round(row["postgres"]["readings_per_s"] / row["sqlite"]["readings_per_s"], 3)
        print(f"{size:>6} {'ratio':>9} {row['postgres_vs_sqlite']:>11} (PostgreSQL / SQLite)")
        results["runs"].append(row)
    results["load_average_1m"] = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
    print(f"load average (1 min) at the end: {results['load_average_1m']} on {os.cpu_count()} CPUs")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
