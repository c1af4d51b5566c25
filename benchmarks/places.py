"""Place lookup (kawal/places.py): microseconds per point for random points in the regency.

    python -m benchmarks.places [--points 100000] [--repeat 5] [--boundaries FILE] [--seed 1]

Points are drawn uniformly inside the regency (the union of its areas; by default Jombang regency's packaged
file), so many lie near borders and some in the slivers between villages, more than a fleet's fixes on roads
would; a second set is drawn in the bounding box, where about half fall outside every area. Each round calls
`Places.lookup(lat, lon)` once per point, as the alert store does for each raised alert and the crate views for
each crate. Reported: load time (file parse, STRtree, grid), the median and best round in µs per point, and the
share of points per outcome.
Before timing, 2,000 points are checked against a plain test of every polygon (smallest code first).
The goal is under 20 µs per point.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import shapely

from kawal.places import Places


def _check(places: Places, points: list[tuple[float, float]]) -> None:
    for lat, lon in points:
        p = shapely.Point(lon, lat)
        desa = next((a for a in places.desa if a.geom.covers(p)), None)
        kec = next((a for a in places.kecamatan if a.geom.covers(p)), None)
        want = desa.code if desa else kec.code if kec else None
        got = places.lookup(lat, lon)
        code = None if got is None else (got["desa_code"] or got["kecamatan_code"])
        if code != want:
            raise SystemExit(f"lookup({lat}, {lon}) = {code}, a plain search says {want}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--boundaries", default=None, help="a GeoJSON file (default: the packaged Jombang file)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    places = Places.load(args.boundaries)
    load_s = time.perf_counter() - t0
    x0, y0, x1, y1 = places.bounds
    rng = random.Random(args.seed)
    boxed = [(rng.uniform(y0, y1), rng.uniform(x0, x1)) for _ in range(args.points)]
    regency = shapely.union_all([a.geom for a in [*places.kecamatan, *places.desa]])
    shapely.prepare(regency)
    inside: list[tuple[float, float]] = []
    while len(inside) < args.points:
        lats = [rng.uniform(y0, y1) for _ in range(args.points)]
        lons = [rng.uniform(x0, x1) for _ in range(args.points)]
        keep = shapely.contains_xy(regency, lons, lats)
        inside += [(la, lo) for la, lo, k in zip(lats, lons, keep.tolist(), strict=True) if k]
    inside = inside[: args.points]
    _check(places, inside[:1000] + boxed[:1000])

    print(f"boundaries: {places.source}: {len(places.kecamatan)} kecamatan, {len(places.desa)} desa")
    print(f"load (parse, STRtree, grid): {load_s * 1000:.0f} ms")
    for name, points in (("in the regency", inside), ("in the bounding box", boxed)):
        rounds = []
        lookup = places.lookup
        for _ in range(args.repeat):
            t = time.perf_counter()
            for lat, lon in points:
                lookup(lat, lon)
            rounds.append((time.perf_counter() - t) / len(points) * 1e6)
        results = [lookup(lat, lon) for lat, lon in points]
        n = len(points)
        desa = sum(1 for r in results if r is not None and r["desa"] is not None) / n
        kec_only = sum(1 for r in results if r is not None and r["desa"] is None) / n
        print(
            f"{n:,} random points {name}, {args.repeat} rounds: median {statistics.median(rounds):.2f} µs/point, "
            f"best {min(rounds):.2f} (goal < 20); in a desa {desa:.1%}, kecamatan only {kec_only:.1%}, "
            f"outside {max(0.0, 1 - desa - kec_only):.1%}"
        )


if __name__ == "__main__":
    main()
