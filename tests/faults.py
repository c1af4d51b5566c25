"""Helpers of the fault tests: publish readings to a broker, count what Kawal stored, read /healthz."""

from __future__ import annotations

import json
import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.servers import KawalServer, http_get

T0 = time.time() - 3600


def publisher(
    port: int,
    client_id: str = "fault-pub",
    tls: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(500)
    c.max_queued_messages_set(0)
    if tls is not None:
        c.tls_set_context(tls)
    if username is not None:
        c.username_pw_set(username, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def reading(tracker: str, seq: int, **extra: Any) -> bytes:
    body = {"ts": round(T0 + seq, 3), "seq": seq, "lat": -7.55 + seq * 1e-6, "lon": 112.23, "bat": 90}
    body.update(extra)
    return json.dumps(body).encode()


def publish(c: mqtt.Client, tracker: str, seqs: range | list[int], qos: int = 1, **extra: Any) -> None:
    """Publish one reading per seq and wait until the broker has every one (PUBACK for QoS 1)."""
    infos = [c.publish(f"kawal/v1/{tracker}/telemetry", reading(tracker, s, **extra), qos=qos) for s in seqs]
    for info in infos:
        info.wait_for_publish(60)
        assert info.is_published()


def publish_through_outages(c: mqtt.Client, tracker: str, seqs: range | list[int], timeout: float = 60) -> None:
    """Like `publish`, but a batch the broker did not take (disconnected meanwhile) is sent again once paho
    has reconnected; a second copy of a reading is what Kawal's de-duplication is for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while not c.is_connected():
            if time.monotonic() > deadline:
                raise TimeoutError("the publisher did not reconnect")
            time.sleep(0.05)
        try:
            publish(c, tracker, seqs)
            return
        except (RuntimeError, ValueError):
            continue
    raise TimeoutError(f"could not publish {tracker} {seqs}")


def stop(c: mqtt.Client) -> None:
    c.disconnect()
    c.loop_stop()


def stored(db: Path, tracker: str | None = None) -> int:
    """Readings in Kawal's SQLite file, read on a separate connection (WAL lets it read while Kawal writes)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        if tracker is None:
            row = conn.execute("SELECT count(*) FROM readings").fetchone()
        else:
            row = conn.execute("SELECT count(*) FROM readings WHERE tracker_id = ?", (tracker,)).fetchone()
    return int(row[0])


def health(srv: KawalServer) -> tuple[int, dict[str, Any]]:
    try:
        status, body = http_get(f"{srv.base_url}/healthz", timeout=5)
    except OSError:
        return 0, {}
    return status, json.loads(body)


def metric(srv: KawalServer, name: str) -> float:
    """The sum of a metric's samples (every label set) from /metrics."""
    _, body = http_get(f"{srv.base_url}/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total
