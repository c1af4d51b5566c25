"""KAWAL_BOUNDARIES on a running `kawal serve`: another regency's file with no code change, and a clear refusal
of a file that cannot be used."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.servers import KawalServer, Mosquitto
from tests.test_places import _regency


def test_another_regency_on_a_running_service(
    tmp_path: Path, kawal_factory: Callable[..., KawalServer], mosquitto: Mosquitto
) -> None:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, "KAWAL_BOUNDARIES": str(_regency(tmp_path))})
    names = [f["properties"]["name"] for f in srv.get("/api/v1/boundaries")["features"]]
    assert names == ["Barat", "Timur", "Lor", "Kidul"]  # kecamatan first, each level by code
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="boundaries-test")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        reading = {"ts": time.time(), "seq": 1, "lat": -7.015, "lon": 110.005, "acc": 5, "bat": 5}  # in desa Lor
        client.publish("kawal/v1/TRK-X/telemetry", json.dumps(reading), qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 15
        while not (items := srv.get("/api/v1/alerts", type="low_battery")["items"]):
            assert time.monotonic() < deadline, srv.log()
            time.sleep(0.1)
    finally:
        client.loop_stop()
        client.disconnect()
    assert items[0]["place"] == {
        "kecamatan": "Barat",
        "desa": "Lor",
        "kecamatan_code": "99.01.01",
        "desa_code": "99.01.01.2001",
    }
    assert [a["id"] for a in srv.get("/api/v1/alerts", kecamatan="barat")["items"]] == [items[0]["id"]]


def test_an_unusable_boundaries_file_stops_the_service_with_the_reason(
    tmp_path: Path, kawal_factory: Callable[..., KawalServer]
) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": []}')
    srv = kawal_factory(env={"KAWAL_BOUNDARIES": str(bad)}, start=False)
    srv.start(wait=False)
    assert srv.proc is not None
    assert srv.proc.wait(60) != 0
    log = srv.log()
    assert "no kecamatan polygons" in log and "Traceback" not in log
