"""Crate views at scale: before (per-crate queries on the track) vs after (the materialised tracker state).

    python -m benchmarks.crates [--crates 5000 50000] [--route-points 60] [--repeat 5] [--ingest-messages 50000]

For each fleet size N, one SQLite file is filled through the stores: N trips (one crate and tracker each,
N/21 per district, a route of --route-points points; a quarter still in storage), 3 to 5 readings per
tracker through ReadingStore.insert (some without a fix, some on Null Island, some seal-only, a backlog
of older readings stored last, duplicates), 1 % of trackers with an open alert, and N/100 crates bound
only in the tracker registry. Then, in one process, the real app (api.app.create_app with the crate cache
off, so every request computes) is called in-process through Starlette's TestClient:

  before  the pre-change code, kept verbatim in benchmarks/crates_legacy.py (three queries on `readings`
          per crate, and every trip's body parsed by pydantic), served on /legacy/... routes of the same app;
  after   api/crates.py: one join of trips x trackers, the registry bindings, open alerts grouped.
          `cold`: the first computation of a fresh service (every trip body read, every Crate built);
          `warm`: recomputed for each request as the 2 s cache expires, with nothing changed in between
          (trip bodies are read once per trip version, a Crate is rebuilt only when its data changed).

Both answers are compared (the same JSON, but for `at`) before anything is timed. Also measured:
- the upgrade of a file from before the change (its trackers table rebuilt without the state columns,
  then `SqliteDatabase(path)` adds and backfills them; the backfill must equal the state ingest kept);
- ReadingStore.insert with and without the state upkeep (in-process, no MQTT);
- the full ingest path of benchmarks/ingest.py (MQTT QoS 1 -> MqttConsumer -> IngestPipeline -> SQLite,
  NullDetector) with and without the upkeep, in interleaved rounds on one private mosquitto
  (--ingest-messages 0 skips it). The machine is shared: compare medians and the CPU column.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from alerts.model import AlertAction, AlertEvent, AlertType
from benchmarks.crates_legacy import legacy
from benchmarks.crates_upkeep import ingest_cost, insert_cost
from devices.reading import Reading
from ingest.readings import ReadingStore
from kawal.clock import EventClock
from kawal.trips import TripIn, TripRepository
from storage.sqlite import SqliteDatabase
from tests.api_harness import Harness, make_harness

T0 = 1_732_060_800.0  # 2024-11-20T00:00:00Z
NOW = T0 + 3 * 3600
BASE = (-7.546, 112.233)  # KPU Jombang warehouse
DISTRICTS = [f"Kecamatan {i:02d}" for i in range(21)]


# -- the fleet ---------------------------------------------------------------------------------------------


def _route(rng: random.Random, dest: tuple[float, float], points: int) -> list[list[float]]:
    out = []
    for i in range(points):
        f = i / (points - 1)
        wobble = 0.0 if i in (0, points - 1) else rng.uniform(-0.002, 0.002)
        out.append(
            [
                round(BASE[0] + (dest[0] - BASE[0]) * f + wobble, 6),
                round(BASE[1] + (dest[1] - BASE[1]) * f - wobble, 6),
            ]
        )
    return out


def build_fleet(path: Path, n: int, route_points: int, seed: int = 7) -> Harness:
    """The fleet described in the module docstring, in a new database at `path`."""
    rng = random.Random(seed)
    db = SqliteDatabase(path)
    trips = TripRepository(db)
    store = ReadingStore(db)
    dests: list[tuple[float, float]] = []
    with db.write() as c:
        for i in range(n):
            ang = 2 * math.pi * i / n
            dest = (BASE[0] + 0.1 * math.sin(ang), BASE[1] + 0.1 * math.cos(ang))
            dests.append(dest)
            depart = T0 + 6 * 3600 if i % 4 == 0 else T0  # a quarter still in storage
            body = TripIn.model_validate(
                {
                    "crate_id": f"JBG-{i:06d}",
                    "tracker_id": f"TRK-{i:06d}",
                    "origin": {"name": "Gudang KPU Jombang", "lat": BASE[0], "lon": BASE[1]},
                    "destination": {"name": f"PPK {i % 21:02d}", "lat": dest[0], "lon": dest[1]},
                    "route": _route(rng, dest, route_points),
                    "depart_after": depart,
                    "arrive_by": depart + 4 * 3600,
                    "district": DISTRICTS[i % 21],
                }
            )
            trips.put_in(c, f"T-{i:06d}", body, T0 - 86400)
    backlog: list[Reading] = []
    batch: list[Reading] = []
    for i in range(n):
        tid, dest = f"TRK-{i:06d}", dests[i]
        k = 3 + i % 3
        arrived = i % 5 == 1
        for j in range(k):
            f = (j + 1) / k
            lat = BASE[0] + (dest[0] - BASE[0]) * (1.0 if arrived and j == k - 1 else f * 0.8)
            lon = BASE[1] + (dest[1] - BASE[1]) * (1.0 if arrived and j == k - 1 else f * 0.8)
            ts = T0 + 600 * (j + 1)
            kind = (i + j) % 7
            if kind == 0:
                r = Reading(tid, ts, None, None, seq=j, bat=80.0, seal="closed")  # seal-only
            elif kind == 1:
                r = Reading(tid, ts, 0.0, 0.0, seq=j, bat=80.0)  # Null Island
            else:
                r = Reading(tid, ts, lat, lon, seq=j, acc=6.0, spd=30.0, hdg=180.0, bat=90.0 - j)
            (backlog if j == 0 and i % 3 == 0 else batch).append(r)
        if i % 50 == 7:
            batch.append(Reading(tid, T0 + 600 * k + 30, None, None, seq=k, seal="open"))
        if len(batch) >= 2000:
            with db.write() as c:
                store.insert(c, batch + batch[:10], T0)  # with duplicates
            batch = []
    with db.write() as c:
        store.insert(c, batch, T0)
        store.insert(c, backlog, T0)  # late, older readings stored last
    h = make_harness(path.parent, crate_cache_s=0.0)
    h.ctx.clock = EventClock(NOW)
    for i in range(0, n, 100):
        h.ctx.alerts.apply(
            AlertEvent(
                action=AlertAction.RAISE,
                type=AlertType.SEAL_BREAK,
                tracker_id=f"TRK-{i:06d}",
                trip_id=f"T-{i:06d}",
                crate_id=f"JBG-{i:06d}",
                ts=T0 + 900,
            )
        )
    for i in range(max(1, n // 100)):
        h.ctx.registry.assign(f"TRK-R{i:05d}", f"REG-{i:05d}", T0)
    h.app.include_router(legacy)
    return h


# -- timing ------------------------------------------------------------------------------------------------


def timed(client: TestClient, url: str, headers: dict[str, str]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = client.get(url, headers=headers)
    dt = time.perf_counter() - t0
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return dt, r.json()


def _without_at(body: Any) -> Any:
    return {k: v for k, v in body.items() if k != "at"} if isinstance(body, dict) else body


# Fields that the before-path cannot compute: they come from the boundaries (kawal/places.py).
NEWER = frozenset({"place", "by_kecamatan"})


def _as_old(new: Any, old: Any) -> Any:
    """`new` cut down to the fields `old` has: the before-path predates fields added since (place, custody)."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _as_old(new.get(k), v) if k not in NEWER else v for k, v in old.items()}
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [_as_old(a, b) for a, b in zip(new, old, strict=True)]
    return new


@contextmanager
def fresh_crate_cache(h: Harness) -> Iterator[None]:
    """The app's crate cache as a service starts: no trip read, no crate built yet."""
    cache = h.app.state.crate_cache
    cache._trips.clear()
    cache._last = None
    yield


def run_size(workdir: Path, n: int, route_points: int, repeat: int, legacy_repeat: int) -> list[str]:
    d = workdir / f"n{n}"
    d.mkdir()
    t0 = time.perf_counter()
    h = build_fleet(d / "kawal.db", n, route_points)
    build_s = time.perf_counter() - t0
    v = h.headers("viewer")
    size = sum(f.stat().st_size for f in d.glob("kawal.db*"))  # with its WAL
    lines = [
        f"N = {n:,} crates ({n * route_points:,} route points; file {size / 1e6:.0f} MB, built in {build_s:.0f} s)"
    ]
    with TestClient(h.app) as client:
        # The same answers first.
        for path in ("/api/v1/crates?limit=100000", "/api/v1/summary", "/api/v1/crates/JBG-000007"):
            _, new = timed(client, path, v)
            _, old = timed(client, "/legacy" + path, v)
            assert _as_old(_without_at(new), _without_at(old)) == _without_at(old), f"{path} differs"
        lines.append("  answers of before and after are identical (crate list of every crate, summary, one crate)")

        ids = [f"JBG-{i:06d}" for i in random.Random(1).sample(range(n), min(200, n))]
        cases: list[tuple[str, str]] = [
            ("GET /api/v1/crates?limit=100", "/api/v1/crates?limit=100"),
            ("GET /api/v1/crates (limit 10000)", "/api/v1/crates"),
            ("GET /api/v1/crates?district=..&state=..", f"/api/v1/crates?district={DISTRICTS[3]}&state=in_transit"),
            ("GET /api/v1/summary", "/api/v1/summary"),
        ]
        lines.append(
            f"  {'request':<42} {'before':>8} {'after:cold':>11} {'after:warm':>11} {'speed-up cold/warm':>20}"
        )
        for name, path in cases:
            before = [timed(client, "/legacy" + path, v)[0] for _ in range(legacy_repeat)]
            cold = []
            for _ in range(repeat):
                with fresh_crate_cache(h):
                    cold.append(timed(client, path, v)[0])
            warm = [timed(client, path, v)[0] for _ in range(repeat)]
            b, c, w = statistics.median(before), statistics.median(cold), statistics.median(warm)
            lines.append(f"  {name:<42} {b:>8.3f} {c:>11.3f} {w:>11.3f} {b / c:>11.0f}x /{b / w:>5.0f}x")
        one_before = [timed(client, f"/legacy/api/v1/crates/{c}", v)[0] for c in ids[:50]]
        one_after = [timed(client, f"/api/v1/crates/{c}", v)[0] for c in ids]
        ob, oa = statistics.median(one_before), statistics.median(one_after)
        lines.append(
            f"  {'GET /api/v1/crates/{id} (median of 50/200)':<42} {ob:>8.4f} {oa:>11.4f} {'':>11} {ob / oa:>11.1f}x"
        )
    lines.append(upgrade(d / "kawal.db", workdir / f"n{n}-old.db"))
    return lines


# The trackers table as it was before the change.
OLD_TRACKERS = """
BEGIN;
CREATE TABLE trackers_before (tracker_id TEXT PRIMARY KEY, crate_id TEXT, status TEXT, status_at REAL,
                              created_at REAL NOT NULL);
INSERT INTO trackers_before SELECT tracker_id, crate_id, status, status_at, created_at FROM trackers;
DROP TABLE trackers;
ALTER TABLE trackers_before RENAME TO trackers;
COMMIT;
"""


def upgrade(src: Path, dst: Path) -> str:
    """A copy of the file made to look like one from before the change, then opened by Database."""
    conn = sqlite3.connect(dst)
    with sqlite3.connect(src) as s:  # the backup API: the copy includes what is still in the WAL
        s.backup(conn)
    expected = {
        r[0]: tuple(r[1:])
        for r in conn.execute("SELECT tracker_id, last_seen, fix_ts, fix_lat, seal, seal_ts FROM trackers")
    }
    conn.executescript(OLD_TRACKERS)
    readings = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    conn.close()
    t0 = time.perf_counter()
    db = SqliteDatabase(dst)
    dt = time.perf_counter() - t0
    got = {
        r[0]: tuple(r[1:])
        for r in db.conn().execute("SELECT tracker_id, last_seen, fix_ts, fix_lat, seal, seal_ts FROM trackers")
    }
    assert got == expected, "the backfill differs from the state kept by ingest"
    return f"  upgrade of a file from before (columns added, state backfilled from {readings:,} readings): {dt:.2f} s"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crates", type=int, nargs="*", default=[5000, 50_000], help="fleet sizes (none: skip)")
    ap.add_argument("--route-points", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=5, help="timed requests per case after the change")
    ap.add_argument("--legacy-repeat", type=int, default=2, help="timed requests per case before the change")
    ap.add_argument("--skip-insert", action="store_true", help="skip the ReadingStore.insert comparison")
    ap.add_argument("--ingest-messages", type=int, default=50_000, help="full ingest path runs (0: skip)")
    ap.add_argument("--ingest-trackers", type=int, default=500)
    ap.add_argument("--ingest-rounds", type=int, default=4)
    ap.add_argument("--inflight", type=int, default=20, help="mosquitto max_inflight_messages (its default: 20)")
    a = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kawal-crates-"))
    out: list[str] = []
    try:
        for n in a.crates:
            lines = run_size(workdir, n, a.route_points, a.repeat, a.legacy_repeat)
            print("\n".join(lines), flush=True)
            out += lines
        if not a.skip_insert:
            lines = insert_cost(workdir, T0)
            print("\n".join(lines), flush=True)
            out += lines
        if a.ingest_messages > 0:
            lines = ingest_cost(workdir, a.ingest_messages, a.ingest_trackers, a.ingest_rounds, a.inflight)
            print("\n".join(lines), flush=True)
            out += lines
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\nBefore vs after (crate views: seconds per request, in-process, medians):\n" + "\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
