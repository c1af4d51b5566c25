"""One tracker floods the broker: the others are still stored and detected, the flood is counted, and with
KAWAL_FLOOD_DROP the flooding tracker is held to its rate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from ingest.flood import FloodGuard
from kawal.metrics import Metrics
from tests.api_harness import trip_body
from tests.faults import metric, publish, publisher, stop, stored
from tests.servers import KawalServer, Mosquitto, wait_for


def _flooded(m: Metrics) -> float:
    return m.registry.get_sample_value("kawal_flood_messages_total") or 0.0


def test_guard_counts_beyond_the_rate_and_drops_only_when_told() -> None:
    m = Metrics()
    count_only = FloodGuard(rate_per_s=10, burst=5, drop=False, metrics=m)
    t = 1000.0
    assert all(count_only.admit("kawal/v1/T1/telemetry", t) for _ in range(20))  # counted, never dropped
    assert _flooded(m) == 15
    m2 = Metrics()
    limit = FloodGuard(rate_per_s=10, burst=5, drop=True, metrics=m2)
    admitted = [limit.admit("kawal/v1/T1/telemetry", t) for _ in range(20)]
    assert admitted.count(True) == 5 and _flooded(m2) == 15
    assert m2.registry.get_sample_value("kawal_readings_rejected_total", {"reason": "rate_limited"}) == 15
    assert limit.admit("kawal/v1/T1/telemetry", t + 0.1)  # one token back after 0.1 s at 10/s
    assert not limit.admit("kawal/v1/T1/telemetry", t + 0.1)
    assert limit.admit("kawal/v1/T2/telemetry", t)  # another tracker has its own bucket
    assert limit.admit("owntracks/user/phone", t)


def test_one_tracker_floods_the_others_are_stored_and_detected(
    kawal_factory: Callable[..., KawalServer], tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        env = {
            "KAWAL_MQTT_URL": broker.url,
            "KAWAL_FLOOD_RATE_PER_S": "50",
            "KAWAL_FLOOD_BURST": "100",
            "KAWAL_FLOOD_DROP": "true",
        }
        srv = kawal_factory(env=env)
        db = srv.workdir / "kawal.db"
        with httpx.Client(base_url=srv.base_url, headers=srv.headers, timeout=10) as client:
            now = time.time()
            trip = trip_body(tracker_id="TRK-GOOD", crate_id="C-GOOD", depart=now - 600, arrive=now + 7200)
            client.put("/api/v1/trips/T-GOOD", json=trip).raise_for_status()
            good = publisher(broker.port, client_id="good")
            publish(good, "TRK-GOOD", [1], seal="closed", ts=now - 5)
            wait_for(lambda: stored(db, "TRK-GOOD") == 1, 30, "the good tracker's first reading")

            flood = publisher(broker.port, client_id="flood")
            n_flood = 20_000
            body = json.dumps({"ts": now, "lat": -7.55, "lon": 112.23}).encode()
            started = threading.Event()

            def blast() -> None:
                for i in range(n_flood):
                    flood.publish("kawal/v1/TRK-FLOOD/telemetry", body.replace(b"}", f', "seq": {i}}}'.encode()))
                    if i == 1000:
                        started.set()

            blaster = threading.Thread(target=blast, daemon=True)
            t0 = time.monotonic()
            blaster.start()
            assert started.wait(30)
            wait_for(lambda: metric(srv, "kawal_flood_messages_total") > 0, 30, "the flood counted")
            publish(good, "TRK-GOOD", range(2, 12), seal="closed", ts=time.time() - 2)
            publish(good, "TRK-GOOD", [12], seal="open", ts=time.time() - 1)
            sent = time.monotonic()

            def seal_break() -> bool:
                items = client.get("/api/v1/alerts", params={"tracker_id": "TRK-GOOD"}).json()["items"]
                return any(a["type"] == "seal_break" for a in items)

            wait_for(seal_break, 60, "the good tracker's seal break detected during the flood")
            print(f"seal break detected {time.monotonic() - sent:.2f} s after publishing, during the flood")
            blaster.join(60)
            elapsed = time.monotonic() - t0
            assert stored(db, "TRK-GOOD") == 12
            flooded = metric(srv, "kawal_flood_messages_total")
            assert flooded > 0
            wait_for(lambda: metric(srv, "kawal_messages_received_total") >= n_flood + 12, 60, "the flood handled")
            n_stored = stored(db, "TRK-FLOOD")
            # Held to its rate: the burst, plus 50/s over the time the flood took (with a margin for queueing).
            assert n_stored <= 100 + 50 * (time.monotonic() - t0 + 5), (n_stored, elapsed)
            assert n_stored + metric(srv, 'kawal_readings_rejected_total{reason="rate_limited"}') == n_flood
            stop(flood)
            stop(good)
    finally:
        broker.stop()
