"""Replay through the real broker and the running service: a 3-hour trip, one incident of each type.

Under KAWAL_CLOCK=event the service's clock follows the readings, so three hours replay in seconds.
A second tracker (whose trip starts tomorrow) reports from its store all along, as a fleet would; its
trip's destination lies on our crate's road, which is where the wrong_destination incident happens.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from anomaly.tracks import GUDANG, T0, Track, line, offset, point_at
from devices.reading import Reading
from kawal.timeutil import parse_time
from tests.servers import KawalServer, Mosquitto

ROUTE = line(GUDANG, 300, -12_000, n=25)
DEST = ROUTE[-1]
POS_POLISI = point_at(ROUTE, 6000)
PPS_OTHER = point_at(ROUTE, 9000)  # the other trip's destination, on our road
OTHER_ORIGIN = offset(*GUDANG, -3000, -4000)


def scenario() -> tuple[list[Reading], dict[str, Any]]:
    """Readings of both trackers in time order, and the facts the assertions need."""
    facts: dict[str, Any] = {}
    tr = Track("TRK-R1", t=T0 - 45 * 60)
    # storage at the Gudang: low battery, then moved out of the zone and back
    tr.add(*GUDANG, 60, bat=14, seal="closed")
    tr.stay(GUDANG, 5, every_s=60)
    for east in (400, 600, 800, 800, 600, 300):
        tr.add(*offset(*GUDANG, east, 0), 60)
    tr.stay(GUDANG, 5, every_s=60)
    tr.add(*GUDANG, 60, bat=95)  # battery swapped
    tr.stay(GUDANG, 20, every_s=60)
    assert tr.t < T0
    tr.t = T0
    tr.stay(GUDANG, 5)  # loading after departure time: at the origin, no alert
    tr.drive(ROUTE, 20, 30, end_m=2000)
    # detour: a parallel road 600 m east for five minutes
    for i, east in enumerate([300, 600, 600, 600, 600, 600, 600, 600, 600, 300]):
        tr.add(*offset(*point_at(ROUTE, 2000 + 160 * (i + 1)), east, 0), 30)
    tr.drive(ROUTE, 20, 30, start_m=3600, end_m=4000)
    tr.add(*offset(*point_at(ROUTE, 4000), 10_000, 0), 30)  # one impossible fix
    tr.drive(ROUTE, 20, 30, start_m=4000, end_m=4500)
    facts["stop_began"] = tr.readings[-1].ts
    tr.stay(point_at(ROUTE, 4500), 15)
    tr.drive(ROUTE, 20, 30, start_m=4500, end_m=6000)
    tr.stay(POS_POLISI, 30)  # an allowed stop
    tr.drive(ROUTE, 20, 30, start_m=6000, end_m=7000)
    facts["silence_began"] = tr.readings[-1].ts
    tr.silent(20)
    tr.drive(ROUTE, 20, 30, start_m=7500, end_m=9000)
    tr.stay(PPS_OTHER, 12)  # at rest in another trip's destination
    tr.drive(ROUTE, 20, 30, start_m=9000, end_m=10_000)
    tr.add(*point_at(ROUTE, 10_000), 30, seal="open")
    tr.add(*point_at(ROUTE, 10_050), 30, seal="open")
    tr.add(*point_at(ROUTE, 10_100), 30, seal="closed")
    tr.drive(ROUTE, 20, 30, start_m=10_100)
    facts["entered"] = tr.readings[-1].ts
    tr.stay(DEST, 10)
    facts["open_after"] = tr.t
    tr.add(*DEST, 30, seal="open")  # expected: inside the destination after open_after
    tr.stay(DEST, 10)
    facts["arrive_by"] = facts["entered"] - 15 * 60
    facts["end"] = tr.t
    assert tr.t - (T0 - 45 * 60) >= 3 * 3600

    other = Track("TRK-R2", t=T0 - 45 * 60)
    while other.t < tr.t:
        other.add(*OTHER_ORIGIN, 60, seal="closed", bat=88)
    readings = sorted([*tr.readings, *other.readings], key=lambda r: (r.ts, r.tracker_id))
    return readings, facts


def payload(r: Reading) -> bytes:
    body = {"ts": r.ts, "seq": r.seq}
    for k in ("lat", "lon", "acc", "bat", "seal"):
        v = getattr(r, k)
        if v is not None:
            body[k] = v
    return json.dumps(body).encode()


def trip_body(
    tracker: str, crate: str, route: list[tuple[float, float]], open_after: float | None = None, **kw: Any
) -> dict[str, Any]:
    o, d = route[0], route[-1]
    body = {
        "crate_id": crate,
        "tracker_id": tracker,
        "origin": {"name": f"origin {crate}", "lat": o[0], "lon": o[1], "radius_m": 150},
        "destination": {
            "name": f"destination {crate}",
            "lat": d[0],
            "lon": d[1],
            "radius_m": 150,
            "open_after": open_after,
        },
        "route": [list(p) for p in route],
        "corridor_m": 200,
        "max_stop_min": 10,
        "max_silence_min": 15,
    }
    body.update(kw)
    return body


def put(srv: KawalServer, path: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        srv.base_url + path,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={**srv.headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status in (200, 201), resp.read()


def publish_all(broker: Mosquitto, readings: list[Reading]) -> None:
    """Publish at QoS 1 in order, once connected, and wait until the broker acknowledged every message."""
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="replay-test", protocol=mqtt.MQTTv311)
    client.on_connect = lambda *_: connected.set()
    host, port = broker.url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.loop_start()
    try:
        assert connected.wait(15), "no CONNACK from the broker"
        infos = []
        for r in readings:
            info = client.publish(f"kawal/v1/{r.tracker_id}/telemetry", payload(r), qos=1)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
            infos.append(info)
        deadline = time.monotonic() + 60
        for info in infos:
            info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
        assert all(info.is_published() for info in infos), "the broker did not acknowledge every message"
    finally:
        client.loop_stop()
        client.disconnect()


def stored(srv: KawalServer) -> float:
    with urllib.request.urlopen(srv.base_url + "/metrics", timeout=10) as resp:
        for line_ in resp.read().decode().splitlines():
            if line_.startswith("kawal_readings_stored_total"):
                return float(line_.split()[-1])
    return 0.0


@pytest.mark.slow
def test_three_hour_trip_raises_each_expected_alert_once(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer]
) -> None:
    readings, facts = scenario()
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, "KAWAL_CLOCK": "event"})
    put(
        srv,
        "/api/v1/trips/T-R1",
        trip_body(
            "TRK-R1",
            "JBG-R1",
            ROUTE,
            stops=[{"name": "Pos Polisi", "lat": POS_POLISI[0], "lon": POS_POLISI[1], "radius_m": 100}],
            depart_after=T0,
            arrive_by=facts["arrive_by"],
            open_after=facts["open_after"],
        ),
    )
    put(
        srv,
        "/api/v1/trips/T-R2",
        trip_body(
            "TRK-R2",
            "JBG-R2",
            [OTHER_ORIGIN, PPS_OTHER],
            depart_after=T0 + 86400,
            arrive_by=T0 + 90000,
        ),
    )
    assert srv.get("/api/v1/trips/T-R1")["destination"]["open_after"] is not None

    publish_all(mosquitto, readings)

    deadline = time.monotonic() + 120
    while stored(srv) < len(readings) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stored(srv) == len(readings), srv.log()

    expected = {
        "seal_break",
        "route_deviation",
        "unscheduled_stop",
        "signal_lost",
        "unexpected_movement",
        "wrong_destination",
        "overdue",
        "gps_jump",
        "low_battery",
    }
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = srv.get("/api/v1/alerts", limit=1000)["items"]
        done = [a for a in items if a["type"] == "overdue" and a["status"] == "resolved"]
        if {a["type"] for a in items} >= expected and done:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # nothing more may arrive
    items = srv.get("/api/v1/alerts", limit=1000)["items"]

    mine = [a for a in items if a["tracker_id"] == "TRK-R1"]
    assert sorted(a["type"] for a in mine) == sorted(expected), json.dumps(items, indent=1)
    assert [a for a in items if a["tracker_id"] != "TRK-R1"] == []
    by_type = {a["type"]: a for a in mine}
    for t, a in by_type.items():
        assert a["trip_id"] == "T-R1" and a["crate_id"] == "JBG-R1"
        assert a["status"] == ("open" if t == "seal_break" else "resolved"), a

    def ts(t: str) -> float:
        return parse_time(by_type[t]["ts"])

    assert ts("overdue") == pytest.approx(facts["arrive_by"], abs=0.001)
    assert ts("signal_lost") == pytest.approx(facts["silence_began"], abs=0.001)
    assert ts("unscheduled_stop") == pytest.approx(facts["stop_began"], abs=0.001)
    assert by_type["wrong_destination"]["details"]["zone"] == "destination JBG-R2"
