"""The ingest benchmarks' workload (trackers driving from the warehouse to a PPK) and MQTT helpers:
a persistent session to fill while its consumer is away, and the publisher that fills it."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

if TYPE_CHECKING:
    from kawal.trips import Trip

T0 = time.time() - 6 * 3600
BASE = (-7.546, 112.233)  # KPU Jombang warehouse


# -- workload ----------------------------------------------------------------------------------------------


def destination(t: int) -> tuple[float, float]:
    ang = 2 * math.pi * t / 97
    return BASE[0] + 0.08 * math.sin(ang), BASE[1] + 0.08 * math.cos(ang)


def workload(n: int, trackers: int, t0: float = T0, heading: bool = True) -> list[tuple[str, bytes]]:
    """n single-reading messages, round-robin over trackers driving from the warehouse to a PPK, every 10 s
    from `t0`; without `hdg` unless `heading`."""
    per = math.ceil(n / trackers)
    msgs: list[tuple[str, bytes]] = []
    for i in range(per):
        f = i / max(1, per - 1)
        for t in range(trackers):
            if len(msgs) == n:
                break
            lat1, lon1 = destination(t)
            body: dict[str, Any] = {
                "ts": round(t0 + i * 10.0, 3),
                "seq": i,
                "lat": round(BASE[0] + (lat1 - BASE[0]) * f, 6),
                "lon": round(BASE[1] + (lon1 - BASE[1]) * f, 6),
                "acc": 6.5,
                "spd": 35.0,
                **({"hdg": 180.0} if heading else {}),
                "bat": 88,
                "seal": "closed",
            }
            msgs.append((f"kawal/v1/TRK-{t:05d}/telemetry", json.dumps(body).encode()))
    return msgs


def batched(msgs: list[tuple[str, bytes]], size: int) -> list[tuple[str, bytes]]:
    """The same readings as messages of `size` readings (JSON arrays) per tracker, trackers taking turns."""
    if size <= 1:
        return msgs
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in msgs:
        by_topic.setdefault(topic, []).append(payload)
    chunks = {t: [ps[i : i + size] for i in range(0, len(ps), size)] for t, ps in by_topic.items()}
    out: list[tuple[str, bytes]] = []
    for k in range(max((len(c) for c in chunks.values()), default=0)):
        out.extend((t, b"[" + b",".join(c[k]) + b"]") for t, c in chunks.items() if k < len(c))
    return out


def trips_for(trackers: int, t0: float = T0, days: float = 30) -> list[Trip]:
    """One trip per tracker, warehouse to its PPK, departing a minute before `t0`, due `days` after it."""
    from kawal.trips import Trip

    out = []
    for t in range(trackers):
        dest = destination(t)
        out.append(
            Trip.model_validate(
                {
                    "trip_id": f"T-{t:05d}",
                    "crate_id": f"JBG-{t:05d}",
                    "tracker_id": f"TRK-{t:05d}",
                    "origin": {"name": "Gudang KPU Jombang", "lat": BASE[0], "lon": BASE[1], "radius_m": 150},
                    "destination": {"name": f"PPK {t}", "lat": dest[0], "lon": dest[1], "radius_m": 150},
                    "route": [list(BASE), list(dest)],
                    "depart_after": t0 - 60,
                    "arrive_by": t0 + days * 86400,
                }
            )
        )
    return out


# -- MQTT helpers ------------------------------------------------------------------------------------------


def v5_client(client_id: str, clean: bool = False) -> tuple[mqtt.Client, Properties]:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0 if clean else 3600
    return c, props


def create_session(port: int, client_id: str) -> None:
    """Subscribe a persistent session, then leave: messages published now queue for it."""
    c, props = v5_client(client_id)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.on_connect = lambda cl, *a: cl.subscribe(
        [("kawal/v1/+/telemetry", 1), ("kawal/v1/+/status", 1), ("owntracks/+/+", 1)]
    )
    c.connect("127.0.0.1", port, clean_start=True, properties=props)
    c.loop_start()
    assert done.wait(10)
    c.disconnect()
    c.loop_stop()


def preload(port: int, msgs: list[tuple[str, bytes]]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    for i in range(0, len(msgs), 20_000):  # packet ids wrap at 65535: keep fewer than that outstanding
        infos = [c.publish(t, p, qos=1) for t, p in msgs[i : i + 20_000]]
        for info in infos:
            info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def wait_until(cond: Callable[[], bool], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark run did not finish")
        time.sleep(0.005)
