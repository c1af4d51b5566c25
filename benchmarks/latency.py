"""Seal-break latency under load: from publishing a seal-open reading to its alert on the SSE stream.

    python -m benchmarks.latency [--background 5000] [--rate 2500] [--probes 100] [--warmup 15]

Starts `kawal serve` (wall clock) with a private Mosquitto, gives every tracker a trip in transit, then a
separate process publishes the background: `--background` trackers driving their routes, `--rate`
readings/s in total, QoS 1. Once the service keeps up, `--probes` other trackers each publish one
seal-open reading, spaced over time; an SSE client in this process times each from just before the
publish to the arrival of its `seal_break`. Prints p50, p99 and max, and whether the service kept up.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import re
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.output import print_result
from simulators.harness import LocalKawal

BASE = (-7.546, 112.233)  # KPU Jombang warehouse
SPEED_MS = 11.0  # about 40 km/h
ROUTE_M = 20_000.0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def route_of(i: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """A straight 20 km route from near the warehouse, each tracker in its own direction."""
    ang = 2 * math.pi * (i % 360) / 360
    off = 0.002 * (i // 360)
    a = (BASE[0] + off, BASE[1] + off)
    d_deg = ROUTE_M / 111_320
    b = (a[0] + d_deg * math.sin(ang), a[1] + d_deg * math.cos(ang))
    return a, b


def position(i: int, t: float, t0: float) -> tuple[float, float, float]:
    a, b = route_of(i)
    f = min(1.0, SPEED_MS * (t - t0) / ROUTE_M)
    ang = 2 * math.pi * (i % 360) / 360
    hdg = (90 - math.degrees(ang)) % 360
    return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), hdg


def trip_body(tracker: str, i: int, now: float) -> dict[str, Any]:
    a, b = route_of(i)
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    return {
        "crate_id": f"C-{tracker}",
        "tracker_id": tracker,
        "origin": {"name": "Gudang", "lat": a[0], "lon": a[1], "radius_m": 150},
        "destination": {"name": "Tujuan", "lat": b[0], "lon": b[1], "radius_m": 150},
        "route": [[a[0], a[1]], [mid[0], mid[1]], [b[0], b[1]]],
        "depart_after": _iso(now - 600),
        "arrive_by": _iso(now + 3 * 3600),
    }


def background(mqtt_port: int, n: int, rate: float, t0: float, stop: Any, ready: Any) -> None:
    """The background fleet, in its own process: `rate` readings/s spread over `n` trackers."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-bg-{time.time_ns()}")
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", mqtt_port)
    c.loop_start()
    seq = [0] * n
    i = 0
    start = time.monotonic()
    sent = 0
    while not stop.is_set():
        now = time.time()
        lat, lon, hdg = position(i, now, t0)
        seq[i] += 1
        body = {
            "ts": now,
            "lat": lat,
            "lon": lon,
            "acc": 8,
            "spd": 40,
            "hdg": hdg,
            "bat": 90,
            "seal": "closed",
            "seq": seq[i],
        }
        c.publish(f"kawal/v1/bg-{i:05d}/telemetry", json.dumps(body), qos=1)
        sent += 1
        i = (i + 1) % n
        if i == 0:
            ready.set()  # every tracker has reported once
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    c.loop_stop()
    c.disconnect()


class Listener:
    """SSE client: the monotonic arrival time of each probe's seal_break."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.arrived: dict[str, float] = {}
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self.connected.wait(30):
            raise RuntimeError("the alert stream did not open")

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.stream("GET", f"{self.url}/api/v1/alerts/stream", headers=headers, timeout=None) as r:
            self.connected.set()
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                at = time.perf_counter()
                alert = json.loads(line[5:])
                if alert.get("type") == "seal_break" and alert.get("tracker_id", "").startswith("probe-"):
                    self.arrived.setdefault(alert["tracker_id"], at)


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else math.nan


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalKawal(Path(tmp), clock="wall", broker="mosquitto", extra_env=dict(args.env)) as k,
    ):
        now = time.time()
        t0 = now - 60
        headers = {"Authorization": f"Bearer {k.token}"}
        names = [(f"bg-{i:05d}", i) for i in range(args.background)]
        names += [(f"probe-{j:04d}", j) for j in range(args.probes)]
        with httpx.Client(base_url=k.api_url, headers=headers, timeout=30) as api:

            def put(item: tuple[str, int]) -> None:
                tracker, i = item
                r = api.put(f"/api/v1/trips/T-{tracker}", json=trip_body(tracker, i, now))
                r.raise_for_status()

            started = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(put, names))
            print(f"{len(names)} trips created in {time.perf_counter() - started:.1f}s", flush=True)

        listener = Listener(k.api_url, k.token)
        listener.start()
        ctx = mp.get_context("spawn")
        stop, ready = ctx.Event(), ctx.Event()
        bg = ctx.Process(target=background, args=(k.mqtt_port, args.background, args.rate, t0, stop, ready))
        bg.start()
        probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{time.time_ns()}")
        probe.connect("127.0.0.1", k.mqtt_port)
        probe.loop_start()
        try:
            ready.wait(120)
            for j in range(args.probes):  # each probe reports once with its seal closed
                lat, lon, _ = position(j, time.time(), t0)
                body = {"ts": time.time(), "lat": lat, "lon": lon, "seal": "closed", "seq": 1}
                probe.publish(f"kawal/v1/probe-{j:04d}/telemetry", json.dumps(body), qos=1)
            time.sleep(args.warmup)
            sent: dict[str, float] = {}
            for j in range(args.probes):
                tracker = f"probe-{j:04d}"
                lat, lon, _ = position(j, time.time(), t0)
                text = json.dumps({"ts": time.time(), "lat": lat, "lon": lon, "seal": "open", "seq": 2})
                sent[tracker] = time.perf_counter()
                probe.publish(f"kawal/v1/{tracker}/telemetry", text, qos=1)
                time.sleep(args.spacing)
            deadline = time.monotonic() + 10
            while len(listener.arrived) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.05)
            metrics = httpx.get(f"{k.api_url}/metrics", timeout=10).text
        finally:
            stop.set()
            bg.join(30)
            probe.loop_stop()
        lat_ms = sorted((listener.arrived[t] - s) * 1000 for t, s in sent.items() if t in listener.arrived)
        missing = len(sent) - len(lat_ms)
        q = statistics.quantiles(lat_ms, n=100, method="inclusive") if len(lat_ms) >= 2 else [math.nan] * 99
        return {
            "background_trackers": args.background,
            "rate": args.rate,
            "probes": len(sent),
            "missing": missing,
            "p50_ms": round(q[49], 1),
            "p99_ms": round(q[98], 1),
            "max_ms": round(lat_ms[-1], 1) if lat_ms else math.nan,
            "readings_stored": metric(metrics, "kawal_readings_stored_total"),
            "ingest_queue": metric(metrics, "kawal_ingest_queue_messages"),
            "batches": metric(metrics, "kawal_ingest_batch_seconds_count"),
            "batch_mean_ms": round(
                1000
                * metric(metrics, "kawal_ingest_batch_seconds_sum")
                / metric(metrics, "kawal_ingest_batch_seconds_count"),
                2,
            ),
            "batches_over_50ms": metric(metrics, "kawal_ingest_batch_seconds_count")
            - metric(metrics, 'kawal_ingest_batch_seconds_bucket{le="0.05"}'),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--background", type=int, default=5000, help="background trackers with trips")
    ap.add_argument("--rate", type=float, default=2500, help="background readings per second in total")
    ap.add_argument("--probes", type=int, default=100, help="seal breaks to time")
    ap.add_argument("--spacing", type=float, default=0.2, help="seconds between probes")
    ap.add_argument("--warmup", type=float, default=15, help="seconds of background before the first probe")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        help="KAWAL_X=value for the service (repeatable)",
    )
    args = ap.parse_args()
    print_result(run(args), args.json)


if __name__ == "__main__":
    main()
