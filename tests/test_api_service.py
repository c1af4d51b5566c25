"""The API of the full service (`kawal serve`) with a real Mosquitto: readings published over MQTT become
crate status, tracks, rejections and alerts; the live stream delivers a seal break within 1 s; a client
that reconnects with Last-Event-ID misses nothing; trips imported by `kawal trips import` reach detection."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from tests.api_harness import SseEvent, sse_events, trip_body
from tests.servers import KawalServer, Mosquitto

pytestmark = pytest.mark.slow


class Publisher:
    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)

    def reading(self, tracker: str, **fields: Any) -> None:
        self.send(
            f"kawal/v1/{tracker}/telemetry", json.dumps({"ts": fields.pop("ts", time.time()), **fields})
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class StreamReader:
    """Reads the alert stream in a thread; each event with its arrival time (monotonic)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[tuple[float, SseEvent]] = queue.Queue()
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=60))
        self._headers = headers
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.position: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StreamReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with self._client.stream("GET", "/api/v1/alerts/stream", headers=self._headers) as r:
                for ev in sse_events(r):
                    if self._stop.is_set():
                        return
                    if ev.comment:
                        continue
                    if ev.data is None:  # the position event: from here on, nothing is missed
                        self.position = ev.id
                        self.ready.set()
                    else:
                        self.events.put((time.monotonic(), ev))
        except httpx.HTTPError:
            return

    def next(self, timeout: float = 20.0) -> tuple[float, dict[str, Any], str]:
        arrived, ev = self.events.get(timeout=timeout)
        return arrived, json.loads(ev.data or "{}"), ev.id or ""

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._client.close()
        self._thread.join(1)  # a read blocked until the next heartbeat ends with the connection


def _wait(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def service(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer]
) -> Iterator[tuple[KawalServer, httpx.Client, Publisher]]:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url})
    publisher = Publisher(mosquitto)
    with httpx.Client(base_url=srv.base_url, headers=srv.headers, timeout=30) as client:
        yield srv, client, publisher
    publisher.close()


def _in_transit_trip(tracker: str, crate: str) -> dict[str, Any]:
    now = time.time()
    return trip_body(
        tracker_id=tracker, crate_id=crate, depart=now - 600, arrive=now + 7200, district="Diwek"
    )


def test_seal_break_reaches_the_stream_within_a_second(
    service: tuple[KawalServer, httpx.Client, Publisher],
) -> None:
    srv, client, pub = service
    client.put("/api/v1/trips/T-1", json=_in_transit_trip("TRK-1", "C-1")).raise_for_status()
    pub.reading("TRK-1", lat=-7.5600, lon=112.2310, seq=1, seal="closed", bat=90)
    _wait(lambda: client.get("/api/v1/crates/C-1").json()["last_fix"] is not None, what="the first fix")

    with StreamReader(srv.base_url, srv.headers) as stream:
        assert stream.ready.wait(20)
        published = time.monotonic()
        pub.reading("TRK-1", lat=-7.5601, lon=112.2311, seq=2, seal="open", bat=90)
        arrived, alert, event_id = stream.next()
        latency = arrived - published
        print(f"seal_break: published -> SSE event in {latency * 1000:.0f} ms")
        assert (alert["type"], alert["tracker_id"], alert["trip_id"], alert["crate_id"]) == (
            "seal_break",
            "TRK-1",
            "T-1",
            "C-1",
        )
        assert latency < 1.0

        # The operator acknowledges it over HTTP; the stream carries the change with a later id.
        acked = client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"note": "police informed"})
        assert acked.status_code == 200 and acked.json()["history"][-1]["actor"] == "admin-env"
        _, change, change_id = stream.next()
        assert change["status"] == "acknowledged" and int(change_id) > int(event_id)

    # Disconnected: a low battery and a resolve happen. Reconnecting with Last-Event-ID replays both.
    pub.reading("TRK-1", lat=-7.5602, lon=112.2312, seq=3, seal="open", bat=5)
    _wait(
        lambda: bool(client.get("/api/v1/alerts", params={"type": "low_battery"}).json()["items"]),
        what="the low battery alert",
    )
    client.post(f"/api/v1/alerts/{alert['id']}/resolve", json={"note": "seal replaced"}).raise_for_status()
    with StreamReader(srv.base_url, {**srv.headers, "Last-Event-ID": change_id}) as stream:
        missed = [stream.next() for _ in range(2)]
    kinds = [(a["type"], a["status"]) for _, a, _ in missed]
    assert kinds == [("low_battery", "open"), ("seal_break", "resolved")]
    assert [int(i) for _, _, i in missed] == sorted(int(i) for _, _, i in missed)
    assert int(missed[0][2]) > int(change_id)


def test_every_endpoint_on_the_running_service(service: tuple[KawalServer, httpx.Client, Publisher]) -> None:
    srv, client, pub = service
    trip = client.put("/api/v1/trips/T-7", json=_in_transit_trip("TRK-7", "C-7"))
    assert trip.status_code == 200
    t0 = time.time() - 120
    for seq, lat in enumerate([-7.5500, -7.5505, -7.5510], start=1):  # ~55 m per 30 s: a plausible pace
        pub.reading("TRK-7", ts=t0 + 30 * seq, lat=lat, lon=112.2322, seq=seq, seal="closed", bat=80, spd=7)
    pub.send("kawal/v1/TRK-7/telemetry", b"\xff not json")
    _wait(lambda: len(client.get("/api/v1/crates/C-7/track").json()["items"]) == 3, what="the track")

    crate = client.get("/api/v1/crates/C-7").json()
    assert (crate["tracker_id"], crate["trip_id"], crate["seal"], crate["state"]) == (
        "TRK-7",
        "T-7",
        "closed",
        "in_transit",
    )
    assert crate["last_fix"]["lat"] == -7.551 and crate["last_fix"]["ts"].endswith("Z")
    assert [c["crate_id"] for c in client.get("/api/v1/crates").json()["items"]] == ["C-7"]
    assert client.get("/api/v1/summary").json()["by_state"]["in_transit"] == 1
    assert client.get("/api/v1/trips").json()["items"][0]["trip_id"] == "T-7"
    assert client.get("/api/v1/trips/T-7").json()["crate_id"] == "C-7"
    trackers = client.get("/api/v1/trackers").json()["items"]
    assert [t["tracker_id"] for t in trackers] == ["TRK-7"]  # registered by ingest
    assert client.put("/api/v1/trackers/TRK-7", json={"crate_id": "C-7"}).json()["crate_id"] == "C-7"
    assert client.get("/api/v1/trackers/TRK-7").json()["crate_id"] == "C-7"
    _wait(lambda: bool(client.get("/api/v1/rejected").json()["items"]), what="the rejection")
    rejected = client.get("/api/v1/rejected").json()["items"][0]
    assert rejected["topic"] == "kawal/v1/TRK-7/telemetry" and rejected["payload_encoding"] == "base64"
    made = client.post("/api/v1/tokens", json={"name": "ops-e2e", "role": "viewer"})
    assert made.status_code == 201
    viewer = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/v1/me", headers=viewer).json() == {"name": "ops-e2e", "role": "viewer"}
    assert client.post("/api/v1/alerts/x/ack", json={}, headers=viewer).status_code == 403
    assert client.get("/api/v1/config").json()["clock"] == "wall"
    assert client.get("/api/v1/alerts", params={"tracker_id": "TRK-7"}).json() == {"items": []}
    assert client.get("/api/v1/audit").json()["items"]
    assert client.delete("/api/v1/tokens/ops-e2e").status_code == 204
    metrics = client.get("/metrics").text
    assert "kawal_readings_stored_total 3.0" in metrics
    assert 'kawal_http_requests_total{method="GET",route="/api/v1/crates/{crate_id}",status="200"}' in metrics
    assert httpx.get(f"{srv.base_url}/healthz").json() == {"status": "ok"}


def test_imported_trips_reach_detection_and_the_audit_chain_holds(
    service: tuple[KawalServer, httpx.Client, Publisher], tmp_path: Path
) -> None:
    srv, client, pub = service
    now = time.time()
    manifest = tmp_path / "trips.csv"
    manifest.write_text(
        "trip_id,crate_id,tracker_id,origin_name,origin_lat,origin_lon,destination_name,destination_lat,"
        "destination_lon,route,depart_after,arrive_by,district\n"
        f"T-IMP,C-IMP,TRK-IMP,Gudang KPU Jombang,-7.5460,112.2330,PPK Diwek,-7.5850,112.2300,"
        f'"-7.5460 112.2330; -7.5600 112.2310; -7.5850 112.2300",{now - 600},{now + 7200},Diwek\n'
    )
    db = srv.workdir / "kawal.db"
    run = subprocess.run(
        [sys.executable, "-m", "kawal", "trips", "import", str(manifest), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert client.get("/api/v1/trips/T-IMP").status_code == 200

    # The service reloads trips by itself; once it has, a seal break names the imported trip.
    seq = 0

    def alert_names_trip() -> bool:
        nonlocal seq
        for seal in ("closed", "open"):
            seq += 1
            pub.reading("TRK-IMP", lat=-7.5600, lon=112.2310, seq=seq, seal=seal)
        items = client.get("/api/v1/alerts", params={"tracker_id": "TRK-IMP", "type": "seal_break"}).json()
        return any(a["trip_id"] == "T-IMP" for a in items["items"])

    deadline = time.monotonic() + 40
    while not alert_names_trip():
        assert time.monotonic() < deadline, "the imported trip never reached detection"
        time.sleep(0.5)

    srv.stop()  # verify the file at rest, as an auditor would
    ok = subprocess.run(
        [sys.executable, "-m", "kawal", "audit", "verify", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
