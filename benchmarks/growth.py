"""Growth: detection cost per reading as the fleet grows, and as routes get longer. Both should stay flat.

    python -m benchmarks.growth [--trackers 1000 3000 10000 30000 100000] [--points 10 100 1000 5000]
                                [--plot docs/performance-growth.png]

Uses the fleet of benchmarks/detect.py (road-like routes from Jombang hubs, readings every 10 s with GPS
noise, a few detours and stops). Each point is the CPU time per reading over the second half of the
readings, once every tracker has a state: the steady cost, not the first reading's.
  - trackers: N trips of 100-300 route points, about 300,000 readings in all (at least 6 per tracker);
  - points:   2,000 trips whose routes have exactly P points, 30 readings each.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from anomaly.engine import DetectionEngine
from benchmarks.detect import CountingSink, build_fleet, make_readings


def steady_us(n: int, points: int | None, steps: int, seed: int = 7) -> float:
    trips, drives = build_fleet(n, seed, points)
    readings = make_readings(drives, steps, seed)
    eng = DetectionEngine(CountingSink())
    eng.set_trips(trips)
    half = len(readings) // 2
    eng.process(readings[:half])
    gc.collect()
    gc.disable()
    try:
        cpu = time.process_time()
        for i in range(half, len(readings), 1000):
            b = readings[i : i + 1000]
            eng.process(b)
            eng.tick(b[-1].ts)
        cpu = time.process_time() - cpu
    finally:
        gc.enable()
    return cpu / (len(readings) - half) * 1e6


def plot(path: Path, by_trackers: list[tuple[int, float]], by_points: list[tuple[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = 1.15 * max(y for _, y in by_trackers + by_points)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, data, label in ((a, by_trackers, "trackers with trips"), (b, by_points, "route points per trip")):
        ax.plot([x for x, _ in data], [y for _, y in data], "o-", color="#2563eb")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
        ax.set_ylim(0, top)
    a.set_ylabel("detection CPU µs per reading")
    fig.suptitle("Detection cost per reading (all detectors), steady state")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trackers", type=int, nargs="+", default=[1000, 3000, 10000, 30000, 100000])
    ap.add_argument("--points", type=int, nargs="+", default=[10, 100, 1000, 5000])
    ap.add_argument("--readings", type=int, default=300_000, help="readings per fleet-size point")
    ap.add_argument("--point-trips", type=int, default=2000, help="trips per route-length point")
    ap.add_argument("--plot", type=Path, help="write both curves to this PNG")
    ap.add_argument("--replot", type=Path, help="only draw --plot again from a saved run's JSON line")
    args = ap.parse_args()
    if args.replot:
        saved = json.loads(args.replot.read_text().strip().splitlines()[-1])
        plot(args.plot, [tuple(p) for p in saved["by_trackers"]], [tuple(p) for p in saved["by_points"]])
        return
    by_trackers = []
    for n in args.trackers:
        us = steady_us(n, None, max(6, args.readings // n))
        by_trackers.append((n, us))
        print(f"trackers {n:>7,}: {us:6.1f} µs/reading", flush=True)
    by_points = []
    for p in args.points:
        us = steady_us(args.point_trips, p, 30)
        by_points.append((p, us))
        print(f"route points {p:>5,}: {us:6.1f} µs/reading", flush=True)
    print(json.dumps({"by_trackers": by_trackers, "by_points": by_points}))
    if args.plot:
        plot(args.plot, by_trackers, by_points)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
