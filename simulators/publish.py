"""Publishing a fleet over MQTT from one thread: an event loop over the merged message stream.

`Publisher(mqtt_url, speedup=...)` sends messages (from `Scenario.messages()`) with QoS 1:

- pacing: `speedup=1` is real time, `speedup=X` is X times faster, `speedup=0` is as fast as the broker
  acknowledges (a bounded window of unacknowledged messages, `window`, is the back-pressure);
  `max_rate` caps messages per second on top of that (a service that cannot keep up falls behind, and
  under KAWAL_CLOCK=event a large backlog is a different test from a live feed);
- connections: by default one MQTT connection (or `connections` of them) multiplexes every tracker, with
  a tracker's messages always on the same connection, so their order is kept. `per_tracker=True` gives each
  tracker its own connection with a retained `offline` Last Will on its status topic, for small fleets
  (one socket each); a switched-off tracker then really vanishes and the broker publishes its will. On a
  shared connection the publisher sends that `offline` itself;
- no thread per connection: paho clients are driven from this loop (`loop_read`/`loop_write`/`loop_misc`
  on a selector), so thousands of trackers cost one thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import selectors
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from tqdm import tqdm

from simulators.publish_model import BrokerAddress, PublishError, PublishStats
from simulators.scenario import WIB, Scenario
from simulators.statuses import RetainedStatuses
from simulators.streams import Message

__all__ = ["BrokerAddress", "PublishError", "PublishStats", "Publisher"]  # the first three: publish_model.py

log = logging.getLogger(__name__)


class _Conn:
    """One paho client driven by the publisher's loop."""

    def __init__(self, client: mqtt.Client, name: str) -> None:
        self.client = client
        self.name = name
        self.connected = False
        self.failed: str | None = None
        self.inflight = 0
        self.dropped = False  # deliberately cut (a switched-off tracker)
        self.sock: Any = None


def _will(msg: Message) -> tuple[str, bytes, bool]:
    """A tracker's Last Will: a retained `offline` status (native), or the OwnTracks `lwt` message."""
    if msg.topic.startswith("owntracks/"):
        return msg.topic, json.dumps({"_type": "lwt", "tst": int(msg.at)}).encode(), False
    return f"kawal/v1/{msg.tracker_id}/status", b"offline", True


class Publisher:
    """Sends a fleet's messages to an MQTT broker; see the module docstring."""

    def __init__(
        self,
        mqtt_url: str = "mqtt://127.0.0.1:1883",
        *,
        speedup: float = 1.0,
        connections: int = 1,
        per_tracker: bool = False,
        qos: int = 1,
        protocol: str = "3.1.1",
        window: int = 100,
        progress: bool = True,
        client_prefix: str = "kawal-sim",
        keepalive: int = 60,
        connect_timeout: float = 30.0,
        max_rate: float | None = None,
    ) -> None:
        if speedup < 0 or math.isnan(speedup):
            raise ValueError("speedup must be >= 0 (0: as fast as the broker acknowledges)")
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        if protocol not in ("3.1.1", "5"):
            raise ValueError("protocol must be '3.1.1' or '5'")
        if max_rate is not None and not max_rate > 0:
            raise ValueError("max_rate must be > 0 messages per second (None: no cap)")
        self.addr = BrokerAddress.parse(mqtt_url)
        self.speedup = speedup
        self.max_rate = max_rate
        self.n_connections = max(1, connections)
        self.per_tracker = per_tracker
        self.qos = qos
        self.protocol = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self.window = max(1, window)
        self.progress = progress
        self.client_prefix = client_prefix
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._sel = selectors.DefaultSelector()
        self._conns: dict[str, _Conn] = {}
        self._inflight = 0
        self._acked = 0
        self._last_misc = 0.0
        self.statuses = RetainedStatuses()

    # ----- connections -----------------------------------------------------------------------------
    def _make_client(self, client_id: str, will: tuple[str, bytes, bool] | None) -> _Conn:
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": self.protocol}
        if self.protocol == mqtt.MQTTv311:
            kwargs["clean_session"] = True
        c = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
        conn = _Conn(c, client_id)
        if self.addr.username:
            c.username_pw_set(self.addr.username, self.addr.password)
        if self.addr.tls:
            c.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=will[2])
        c.max_inflight_messages_set(self.window)
        c.max_queued_messages_set(0)

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
            if getattr(rc, "is_failure", False):
                conn.failed = f"broker refused the connection: {rc}"
            else:
                conn.connected = True

        def on_disconnect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
            conn.connected = False

        def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any = None) -> None:
            conn.inflight = max(0, conn.inflight - 1)
            self._inflight = max(0, self._inflight - 1)
            self._acked += 1

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_publish = on_publish
        return conn

    def _open(self, conn: _Conn, reconnect: bool = False) -> None:
        try:
            if reconnect:
                conn.client.reconnect()
            else:
                conn.client.connect(self.addr.host, self.addr.port, self.keepalive)
        except (OSError, ValueError) as e:
            raise PublishError(f"cannot connect to MQTT broker {self.addr.host}:{self.addr.port}: {e}") from e
        self._register(conn)
        deadline = time.monotonic() + self.connect_timeout
        while not conn.connected:
            if conn.failed:
                raise PublishError(conn.failed)
            if time.monotonic() > deadline:
                raise PublishError(f"no CONNACK from {self.addr.host}:{self.addr.port} for {conn.name}")
            self._service(0.05)

    def _register(self, conn: _Conn) -> None:
        if conn.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(conn.sock)
        conn.sock = conn.client.socket()
        if conn.sock is not None:
            # A socket paho closed on its own leaves a stale entry whose descriptor number is now reused.
            stale = self._sel.get_map().get(conn.sock.fileno())
            if stale is not None:
                self._sel.unregister(stale.fileobj)
                if stale.data is not conn:
                    stale.data.sock = None
            self._sel.register(conn.sock, selectors.EVENT_READ, conn)

    def _conn_for(self, msg: Message) -> _Conn:
        if self.per_tracker:
            key = msg.tracker_id
            conn = self._conns.get(key)
            if conn is None:
                conn = self._conns[key] = self._make_client(f"{self.client_prefix}-{msg.tracker_id}"[:64], _will(msg))
                self._open(conn)
            return conn
        key = f"shared-{zlib.crc32(msg.tracker_id.encode()) % self.n_connections}"
        conn = self._conns.get(key)
        if conn is None:
            conn = self._conns[key] = self._make_client(f"{self.client_prefix}-{key}-{id(self) & 0xFFFF:x}", None)
            self._open(conn)
        return conn

    def _drop(self, conn: _Conn) -> None:
        """Cut a tracker's connection without DISCONNECT, so the broker publishes its Last Will."""
        deadline = time.monotonic() + self.connect_timeout
        while conn.inflight and time.monotonic() < deadline:
            self._service(0.02)
        sock = conn.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        conn.dropped = True
        deadline = time.monotonic() + 5.0
        while conn.connected and time.monotonic() < deadline:
            self._service(0.02)
        # Forget the client: the tracker comes back later as a fresh connection (see _conn_for).
        self._discard(conn)
        self._conns = {k: c for k, c in self._conns.items() if c is not conn}

    def _discard(self, conn: _Conn) -> None:
        if conn.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(conn.sock)
        conn.sock = None
        sock = conn.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # ----- the network loop ------------------------------------------------------------------------
    def _service(self, timeout: float) -> None:
        """One round of network I/O on every connection: write what is queued, read acks, keep alive."""
        for conn in self._conns.values():
            if conn.client.want_write():
                conn.client.loop_write()
        for key, _ in self._sel.select(timeout=max(0.0, timeout)):
            conn = key.data
            rc = conn.client.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS and not conn.dropped:
                conn.connected = False
        now = time.monotonic()
        if now - self._last_misc > 1.0:
            self._last_misc = now
            for conn in self._conns.values():
                if conn.dropped:
                    continue
                conn.client.loop_misc()
                if not conn.connected and conn.client.socket() is None:
                    log.warning("MQTT connection %s lost; reconnecting", conn.name)
                    try:
                        conn.client.reconnect()
                        self._register(conn)
                    except OSError as e:
                        log.warning("reconnect of %s failed: %s", conn.name, e)

    def _wait_acks(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._inflight > 0 and time.monotonic() < deadline:
            self._service(0.05)

    # ----- running ---------------------------------------------------------------------------------
    def run(
        self,
        messages: Iterable[Message],
        sim_start: float,
        sim_end: float | None = None,
        *,
        stop: threading.Event | None = None,
        fast_forward_until: float | None = None,
        on_publish: Callable[[Message, float], None] | None = None,
    ) -> PublishStats:
        """Publish `messages` (in `at` order). sim_start is the simulated time that maps to now.

        fast_forward_until: publish as fast as possible up to this simulated time, then pace by `speedup`
        (skips a quiet night in a drill). on_publish(message, wall_time) is called after each publish.
        """
        stats = PublishStats()
        bar = None
        if self.progress and sim_end is not None:
            bar = tqdm(
                total=int(sim_end - sim_start),
                unit="sim-s",
                unit_scale=True,
                dynamic_ncols=True,
                desc="simulating",
                smoothing=0.1,
            )
        wall0 = time.monotonic()
        t0_wall = wall0
        sim0 = sim_start
        ff = fast_forward_until if fast_forward_until is not None else -math.inf
        shown = sim_start
        last_post = 0.0
        try:
            for msg in messages:
                if stop is not None and stop.is_set():
                    stats.stopped = True
                    break
                if self.speedup > 0 and msg.at >= ff:
                    if ff > -math.inf and sim0 < ff:
                        wall0, sim0 = time.monotonic(), ff  # switch from fast-forward to pacing
                    due = wall0 + (msg.at - sim0) / self.speedup
                    while True:
                        now = time.monotonic()
                        if now >= due or (stop is not None and stop.is_set()):
                            break
                        self._service(min(due - now, 0.2))
                    stats.max_lag_s = max(stats.max_lag_s, time.monotonic() - due)
                if self.max_rate is not None:  # a cap on messages per second, whatever the speed-up
                    due = t0_wall + stats.messages / self.max_rate
                    while (now := time.monotonic()) < due and not (stop is not None and stop.is_set()):
                        self._service(min(due - now, 0.2))
                while self._inflight >= self.window:
                    self._service(0.05)
                self._send(msg, stats)
                if on_publish is not None:
                    on_publish(msg, time.time())
                if stats.messages % 64 == 0:
                    self._service(0.0)
                if bar is not None and msg.at - shown >= 1.0:
                    bar.update(int(msg.at - shown))
                    shown += int(msg.at - shown)
                    now = time.monotonic()
                    if now - last_post > 0.5:
                        last_post = now
                        rate = stats.messages / max(1e-9, now - t0_wall)
                        bar.set_postfix_str(
                            f"{datetime.fromtimestamp(msg.at, tz=WIB):%d %b %H:%M} WIB, {rate:,.0f} msg/s",
                            refresh=False,
                        )
            self._wait_acks(self.connect_timeout)
            if self._inflight > 0:
                raise PublishError(f"{self._inflight} messages were never acknowledged by the broker")
        except KeyboardInterrupt:
            stats.stopped = True
            raise
        finally:
            if stats.stopped:  # interrupted: leave no retained `online` behind
                self._say_offline(stats)
            stats.wall_s = time.monotonic() - t0_wall
            stats.acked = self._acked
            if bar is not None:
                bar.close()
            self.close()
        return stats

    def _send(self, msg: Message, stats: PublishStats) -> None:
        if stats.sim_from is None:
            stats.sim_from = msg.at
        stats.sim_to = msg.at
        if msg.control == "drop":
            conn = self._conn_for(msg)
            if self.per_tracker:
                self._drop(conn)  # the broker now publishes the will: `offline`, retained
                self.statuses.dropped(msg.tracker_id)
                return
        conn = self._conn_for(msg)
        if not conn.connected:
            self._open(conn, reconnect=True)
        qos = self.qos
        wall = time.time()  # the moment the message is handed to the network
        info = conn.client.publish(msg.topic, msg.payload, qos=qos, retain=msg.retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise PublishError(f"publish to {msg.topic} failed: {mqtt.error_string(info.rc)}")
        if qos > 0:
            conn.inflight += 1
            self._inflight += 1
        stats.messages += 1
        stats.bytes += len(msg.payload)
        stats.readings += msg.readings
        stats.unique_readings += msg.unique
        if msg.kind == "batch":
            stats.batches += 1
        elif msg.kind == "status":
            stats.statuses += 1
        for mark in msg.marks:
            stats.first_publish.setdefault(mark, wall)
        self.statuses.seen(msg)

    def _say_offline(self, stats: PublishStats) -> None:
        """A retained `offline` for every tracker this run left `online`, acknowledged before closing."""
        try:
            for msg in self.statuses.offline_messages(stats.sim_to or time.time()):
                self._send(msg, stats)
            self._wait_acks(5.0)
        except (OSError, PublishError) as e:
            log.warning("could not publish offline statuses: %s", e)

    def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(OSError):
                if conn.connected:
                    conn.client.disconnect()  # a clean goodbye: no Last Will
                    conn.client.loop_write()
            self._discard(conn)
        self._conns.clear()

    def publish_scenario(self, scenario: Scenario, **kwargs: Any) -> PublishStats:
        """Publish a whole scenario, its start mapped to now."""
        return self.run(scenario.messages(), scenario.start, scenario.end, **kwargs)
