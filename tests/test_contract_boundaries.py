"""The contract's edges, each at its exact boundary: the 256 KiB payload limit, the track's default and
largest `limit`, QoS 0, the 2-minute rest that defines arrival, the severity of every alert type, and the
default settings."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alerts.model import SEVERITY, AlertType
from anomaly.config import DetectionConfig
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, offset, replay
from devices.decode import MAX_PAYLOAD, PAYLOAD_TOO_LARGE, decode_message
from devices.reading import Reading
from kawal.settings import Settings
from tests.api_harness import running_api, trip_body
from tests.faults import publish, publisher, stop, stored
from tests.servers import KawalServer, Mosquitto, wait_for

CONTRACT = Path(__file__).resolve().parent.parent / "docs" / "CONTRACT.md"
TOPIC = "kawal/v1/TRK-1/telemetry"


def _payload(size: int) -> bytes:
    """A valid reading of exactly `size` bytes (an unknown field pads it; unknown fields are kept)."""
    head = json.dumps({"ts": time.time() - 60, "seq": 1, "lat": -7.55, "lon": 112.23, "pad": ""}).encode()
    pad = size - len(head)
    assert pad >= 0
    return head[:-2] + b"x" * pad + b'"}'


def test_payload_of_exactly_256_kib_is_taken_one_byte_more_is_rejected() -> None:
    assert MAX_PAYLOAD == 256 * 1024  # CONTRACT 1.1: "a payload over 256 KiB ... is rejected whole"
    at_limit = _payload(256 * 1024)
    assert len(at_limit) == 256 * 1024
    d = decode_message(TOPIC, at_limit, time.time())
    assert d.rejections == [] and len(d.readings) == 1
    over = _payload(256 * 1024 + 1)
    d = decode_message(TOPIC, over, time.time())
    assert d.readings == [] and [r.reason for r in d.rejections] == [PAYLOAD_TOO_LARGE]


def test_track_limit_defaults_to_10000_and_allows_100000(tmp_path: Path) -> None:
    with running_api(tmp_path) as (h, client):
        admin = h.headers("admin")
        client.put("/api/v1/trips/T-1", json=trip_body(tracker_id="TRK-1", crate_id="C-1"), headers=admin)
        t0 = 1_732_061_000.0
        h.store_readings([Reading("TRK-1", t0 + i, lat=-7.55, lon=112.23, seq=i) for i in range(10_001)])
        viewer = h.headers("viewer")
        assert len(client.get("/api/v1/crates/C-1/track", headers=viewer).json()["items"]) == 10_000
        full = client.get("/api/v1/crates/C-1/track", params={"limit": 100_000}, headers=viewer)
        assert len(full.json()["items"]) == 10_001
        assert client.get("/api/v1/crates/C-1/track", params={"limit": 100_001}, headers=viewer).status_code == 422


def test_qos0_is_accepted(kawal_factory: Callable[..., KawalServer], tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        srv = kawal_factory(env={"KAWAL_MQTT_URL": broker.url})
        pub = publisher(broker.port)
        publish(pub, "TRK-Q0", range(20), qos=0)
        wait_for(lambda: stored(srv.workdir / "kawal.db", "TRK-Q0") == 20, 30, "QoS 0 readings stored")
        stop(pub)
    finally:
        broker.stop()


@pytest.mark.parametrize(("rest_s", "arrived"), [(119.0, False), (120.0, True)])
def test_arrival_is_a_2_minute_rest_in_the_destination(rest_s: float, arrived: bool) -> None:
    """Observed as the contract defines it: a crate that leaves its destination after arriving raises
    unexpected_movement; one that leaves before the 2 minutes were up has not arrived."""
    assert DetectionConfig().arrival_rest_s == 120.0
    route = line(GUDANG, 0, -10_000)
    dest = route[-1]
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip(route=route)])
    tr = Track(t=T0 + 60).drive(route, 40, 30)
    entered = tr.readings[-1]
    assert entered.lat == pytest.approx(dest[0], abs=1e-5) and entered.lon == pytest.approx(dest[1], abs=1e-5)
    tr.add(*dest, rest_s)
    for i in range(4):
        tr.add(*offset(*dest, 300 + 200 * i, 0), 30)
    replay(eng, tr.readings)
    moved = [e for e in rec.raised(AlertType.UNEXPECTED_MOVEMENT) if e.details.get("kind") == "destination"]
    assert bool(moved) is arrived


def test_every_alert_type_has_the_contract_severity() -> None:
    text = CONTRACT.read_text()
    table = dict(re.findall(r"^\| `([a-z_]+)` \| (critical|major|minor|warning) \|", text, flags=re.M))
    assert set(table) == {t.value for t in AlertType}, "the contract's table and AlertType differ"
    assert {t.value: str(s) for t, s in SEVERITY.items()} == table


def test_default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("KAWAL_")]:
        monkeypatch.delenv(name)
    s = Settings()
    assert (s.http_host, s.http_port, s.db, s.mqtt_client_id) == ("127.0.0.1", 8080, "./kawal.db", "kawal")
    assert s.mqtt_url is None  # the embedded broker, on loopback
    assert s.embedded_mqtt_host == "127.0.0.1"
