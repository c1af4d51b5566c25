"""Recovery: time from starting `kawal serve` to a healthy service, with a big detector state to restore and
a backlog of stored readings to replay.

    python -m benchmarks.recovery [--trackers 100000] [--minutes 10] [--every 30]

Prepares a database the way a long-running service leaves it after a crash: `--trackers` trips in transit,
every tracker's detector state in the snapshot, and then `--minutes` of readings (one per tracker every
`--every` seconds) stored after the snapshot, which the restart must replay. Then starts `kawal serve` on it
with a private Mosquitto and times the start until `/healthz` answers 200, split into the service's own
phases as its log reports them.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from anomaly.engine import DetectionEngine
from benchmarks.output import print_result
from devices.reading import Reading
from ingest.readings import ReadingStore
from kawal.detection import SerialDetector
from kawal.trips import TripIn, TripRepository
from simulators.harness import LocalKawal
from storage import open_database

BASE = (-7.546, 112.233)
ROUTE_M = 30_000.0
SPEED_MS = 11.0
PHASES = ("into detection in", "state restored in")  # the service's log lines that time its start


def _route(i: int) -> tuple[tuple[float, float], tuple[float, float]]:
    ang = 2 * math.pi * (i % 720) / 720
    off = 0.001 * (i // 720)
    a = (BASE[0] + off, BASE[1] - off)
    d = ROUTE_M / 111_320
    return a, (a[0] + d * math.sin(ang), a[1] + d * math.cos(ang))


def _pos(i: int, t: float, t0: float) -> tuple[float, float]:
    a, b = _route(i)
    f = min(1.0, SPEED_MS * (t - t0) / ROUTE_M)
    return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])


def prepare(db_path: Path, trackers: int, minutes: float, every: float) -> dict[str, Any]:
    """The database of a service that crashed `minutes` after its last snapshot."""
    started = time.perf_counter()
    now = time.time()
    t0 = now - minutes * 60 - 120
    db = open_database(str(db_path))
    trips = TripRepository(db)
    with db.write() as c:
        for i in range(trackers):
            a, b = _route(i)
            mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
            body = TripIn.model_validate(
                {
                    "crate_id": f"C-{i:06d}",
                    "tracker_id": f"TRK-{i:06d}",
                    "origin": {"name": "Gudang", "lat": a[0], "lon": a[1], "radius_m": 150},
                    "destination": {"name": "Tujuan", "lat": b[0], "lon": b[1], "radius_m": 150},
                    "route": [list(a), list(mid), list(b)],
                    "depart_after": t0 - 600,
                    "arrive_by": now + 6 * 3600,
                }
            )
            trips.put_in(c, f"T-{i:06d}", body, now)
    readings = ReadingStore(db)
    engine = DetectionEngine(lambda ev: None)
    engine.set_trips(trips.list())
    detector = SerialDetector(engine, db, readings, trips, snapshot_interval_s=3600)
    seq = [0] * trackers

    def round_at(t: float) -> list[Reading]:
        out = []
        for i in range(trackers):
            lat, lon = _pos(i, t, t0)
            seq[i] += 1
            out.append(Reading(f"TRK-{i:06d}", t + i * every / trackers, lat, lon, seq[i], 8.0, 40.0, None, 90.0))
        return out

    def store(rs: list[Reading]) -> list[Reading]:
        with db.write() as c:
            return readings.insert(c, rs, now)

    # Two rounds before the snapshot give every tracker a state; then the backlog after it.
    for k in range(2):
        detector.process(store(round_at(t0 + k * every)))
    detector.save_snapshot()
    backlog = 0
    t = t0 + 2 * every
    while t < t0 + 2 * every + minutes * 60:
        backlog += len(store(round_at(t)))
        t += every
    db.close()
    return {"prepare_s": round(time.perf_counter() - started, 1), "backlog_readings": backlog}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prep = prepare(work / "kawal.db", args.trackers, args.minutes, args.every)
        k = LocalKawal(work, clock="wall", broker="mosquitto", startup_timeout=600)
        started = time.perf_counter()
        with k:
            healthy = time.perf_counter() - started
            log = k.log_tail(200_000)
        return {
            "trackers": args.trackers,
            "minutes": args.minutes,
            **prep,
            "start_to_healthy_s": round(healthy, 2),
            "phases": [ln.split(": ", 1)[-1] for ln in log.splitlines() if any(p in ln for p in PHASES)],
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trackers", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=10.0, help="readings stored after the snapshot")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between a tracker's readings")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = ap.parse_args()
    print_result(run(args), args.json)


if __name__ == "__main__":
    main()
