"""Detection cost per reading with every detector on 10,000 concurrent trips, and memory per tracker.

    python benchmarks/detect.py                       # the figures in docs/detection.md
    python benchmarks/detect.py --trips 2000 --steps 30 --memory-trackers 20000   # a quick run

Fleet: trips from a dozen Jombang hubs (KPU warehouse, PPK offices) to destinations 5-25 km away, each
route a wiggly road of 100-300 points. Every tracker reports every 10 s while driving at 30-60 km/h with
Gaussian noise (sigma 5 m, acc 8 m); 3 % of them make a detour and 3 % stop for 12 minutes, so the
deviation, stop and zone paths run too. Readings arrive interleaved across trackers in batches of 1000,
with a tick after each batch, as the ingest worker does.

Reported:
- microseconds per reading of `DetectionEngine.process` + `tick`, for each route-matching strategy
  (`python`: a plain loop over all segments, the pre-vectorisation baseline; `numpy`: a vectorised
  full search per fix; `hint`: the last matched segment first, numpy as fallback);
- bytes per tracker state, measured with tracemalloc on `--memory-trackers` trackers (state objects,
  the engine's dict entry and timer entry, everything a tracker adds), and per compiled trip plan.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from alerts.model import AlertEvent
from anomaly.config import DetectionConfig
from anomaly.engine import DetectionEngine
from anomaly.tracks import T0, make_trip
from devices.reading import Reading
from kawal.geodesy import M_PER_DEG
from kawal.trips import Trip

HUBS = [  # KPU warehouse and PPK (sub-district) offices of Jombang regency, approximately
    (-7.5460, 112.2330),
    (-7.5850, 112.2300),
    (-7.4920, 112.2320),
    (-7.6380, 112.2680),
    (-7.5520, 112.3170),
    (-7.5870, 112.1690),
    (-7.4770, 112.3400),
    (-7.6560, 112.1970),
    (-7.5230, 112.1450),
    (-7.6180, 112.3360),
    (-7.4540, 112.2640),
    (-7.6950, 112.2530),
]


class CountingSink:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, ev: AlertEvent) -> None:
        self.n += 1


@dataclass
class Drive:
    lat: np.ndarray
    lon: np.ndarray
    cum: np.ndarray  # cumulative metres along the route


def make_route(rng: random.Random, points: int | None = None) -> list[tuple[float, float]]:
    """A road-like polyline: a straight line to a destination, bent by two sine waves and jitter; 100 to
    300 points unless `points` says."""
    a = rng.choice(HUBS)
    dist = rng.uniform(5_000, 25_000)
    bearing = rng.uniform(0, 2 * math.pi)
    kx = M_PER_DEG * math.cos(math.radians(a[0]))
    n = points or rng.randint(100, 300)
    t = np.linspace(0.0, 1.0, n)
    along = t * dist
    side = (
        rng.uniform(200, 1500) * np.sin(t * math.pi * rng.uniform(1, 4))
        + rng.uniform(50, 300) * np.sin(t * math.pi * rng.uniform(5, 15))
        + np.array([0.0] + [rng.gauss(0, 8) for _ in range(n - 2)] + [0.0])
    )
    east = along * math.sin(bearing) + side * math.cos(bearing)
    north = along * math.cos(bearing) - side * math.sin(bearing)
    return [(a[0] + y / M_PER_DEG, a[1] + x / kx) for x, y in zip(east, north, strict=True)]


def build_fleet(n: int, seed: int, points: int | None = None) -> tuple[list[Trip], list[Drive]]:
    rng = random.Random(seed)
    trips, drives = [], []
    for i in range(n):
        route = make_route(rng, points)
        trips.append(make_trip(f"T-{i}", f"TRK-{i}", route=route, updated_at=T0))
        lat = np.array([p[0] for p in route])
        lon = np.array([p[1] for p in route])
        kx = M_PER_DEG * math.cos(math.radians(lat[0]))
        seg = np.hypot(np.diff(lon) * kx, np.diff(lat) * M_PER_DEG)
        drives.append(Drive(lat, lon, np.concatenate([[0.0], np.cumsum(seg)])))
    return trips, drives


def make_readings(drives: list[Drive], steps: int, seed: int, every_s: float = 10.0) -> list[Reading]:
    """`steps` readings per tracker, interleaved in time order across the fleet."""
    rng = np.random.default_rng(seed)
    n = len(drives)
    speed = rng.uniform(30, 60, n) / 3.6
    offset_s = rng.uniform(0, every_s, n)
    kind = rng.random(n)  # < 0.03: detour, < 0.06: 12-minute stop
    per: list[list[Reading]] = []
    for i, d in enumerate(drives):
        ts = T0 + 60 + offset_s[i] + every_s * np.arange(steps)
        s = speed[i] * (ts - T0)
        if kind[i] < 0.06:
            k = steps // 3
            if kind[i] >= 0.03:  # stop: the crate stays put for 72 readings
                s[k:] = np.maximum(s[k], s[k:] - speed[i] * every_s * 72)
        s = np.minimum(s, d.cum[-1])
        lat = np.interp(s, d.cum, d.lat)
        lon = np.interp(s, d.cum, d.lon)
        noise = rng.normal(0, 5.0, (2, steps))
        if kind[i] < 0.03:  # detour: 600 m off the route for a third of the time
            noise[0, steps // 3 : 2 * steps // 3] += 600
        kx = M_PER_DEG * math.cos(math.radians(lat[0]))
        lat = lat + noise[1] / M_PER_DEG
        lon = lon + noise[0] / kx
        tid = f"TRK-{i}"
        per.append(
            [
                Reading(
                    tid, ts=float(ts[j]), lat=float(lat[j]), lon=float(lon[j]), seq=j, acc=8.0, bat=80.0, seal="closed"
                )
                for j in range(steps)
            ]
        )
    out = [per[i][j] for j in range(steps) for i in range(n)]
    out.sort(key=lambda r: r.ts)
    return out


def run_cpu(trips: list[Trip], readings: list[Reading], mode: str, batch: int) -> tuple[float, float, int, float]:
    """(wall us/reading, CPU us/reading, alert events, set_trips seconds)."""
    sink = CountingSink()
    eng = DetectionEngine(sink, DetectionConfig(route_search=mode))  # type: ignore[arg-type]
    t = time.perf_counter()
    eng.set_trips(trips)
    compile_s = time.perf_counter() - t
    gc.collect()
    gc.disable()
    try:
        t = time.perf_counter()
        cpu = time.process_time()
        for i in range(0, len(readings), batch):
            b = readings[i : i + batch]
            eng.process(b)
            eng.tick(b[-1].ts)
        cpu = time.process_time() - cpu
        elapsed = time.perf_counter() - t
    finally:
        gc.enable()
    return elapsed / len(readings) * 1e6, cpu / len(readings) * 1e6, sink.n, compile_s


def measure_memory(n: int, seed: int) -> tuple[float, float, int, float, float]:
    """(bytes per tracker state, bytes per compiled trip plan, snapshot bytes, snapshot s, restore s)."""
    trips, drives = build_fleet(n, seed)
    readings = make_readings(drives, 6, seed + 1)
    del drives
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    eng = DetectionEngine(CountingSink())
    eng.set_trips(trips)
    eng._states.clear()  # measure the trackers' own state separately from the plans
    eng._timers.__init__()  # type: ignore[misc]
    gc.collect()
    plans_bytes = tracemalloc.get_traced_memory()[0] - base
    before = tracemalloc.get_traced_memory()[0]
    for i in range(0, len(readings), 1000):
        b = readings[i : i + 1000]
        eng.process(b)
        eng.tick(b[-1].ts)
    gc.collect()
    state_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert eng.trackers == n
    t = time.perf_counter()
    blob = eng.snapshot()
    snap_s = time.perf_counter() - t
    t = time.perf_counter()
    eng.restore(blob)
    restore_s = time.perf_counter() - t
    return state_bytes / n, plans_bytes / n, len(blob), snap_s, restore_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trips", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=60, help="readings per tracker (10 s apart)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--modes", default="python,numpy,hint")
    ap.add_argument("--memory-trackers", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="runs per strategy (best and median reported)")
    args = ap.parse_args()

    print(f"building {args.trips} trips and {args.trips * args.steps} readings ...", flush=True)
    trips, drives = build_fleet(args.trips, args.seed)
    readings = make_readings(drives, args.steps, args.seed + 1)
    pts = sum(len(t.route) for t in trips) / len(trips)
    print(f"  {len(trips)} trips, {pts:.0f} route points on average, {len(readings)} readings")
    for mode in args.modes.split(","):
        runs = [run_cpu(trips, readings, mode, args.batch) for _ in range(args.repeat)]
        wall = min(r[0] for r in runs)
        cpu = min(r[1] for r in runs)
        alerts, compile_s = runs[0][2], runs[0][3]
        print(
            f"cpu  route_search={mode:<6} {cpu:7.2f} us CPU per reading ({wall:7.2f} us wall), best of "
            f"{len(runs)}   ({alerts} alert events; set_trips {compile_s:.1f} s)",
            flush=True,
        )
    del trips, drives, readings
    gc.collect()
    if args.memory_trackers:
        n_mem = args.memory_trackers
        per_state, per_plan, snap_bytes, snap_s, restore_s = measure_memory(n_mem, args.seed + 2)
        print(
            f"mem  {args.memory_trackers} trackers: {per_state:,.0f} B per tracker state, "
            f"{per_plan:,.0f} B per compiled trip plan (routes of 100-300 points)"
        )
        print(
            f"snap {args.memory_trackers} trackers: {snap_bytes / 1e6:.1f} MB compressed, snapshot "
            f"{snap_s:.2f} s, restore {restore_s:.2f} s"
        )


if __name__ == "__main__":
    main()
