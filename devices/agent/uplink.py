"""MQTT publishing from the queue (CONTRACT 1.1, 1.2): QoS 1, a retained `online` status with a Last
Will of `offline`, and a reading forgotten only after the broker's PUBACK for the message that carried it.

Everything is published from the queue, in queue order. A lone reading goes out as an object at once; a
backlog (the broker was away) goes out as JSON arrays of up to `batch_max` readings. At most
`inflight_max` messages wait for their PUBACK. paho keeps a message that was in flight when the
connection dropped and sends it again, with the same message id, after it reconnects, so the mapping from
message id to queue rows is kept across reconnects; only a restart of the agent resends from the queue
(the server drops the duplicates by `seq`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import ssl
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.agent.config import AgentConfig
from devices.agent.queue import ReadingQueue

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 60.0  # a connection that acknowledges nothing for this long is not acknowledging our messages
MAX_PAYLOAD = 250_000  # bytes, under the server's 256 KiB limit (CONTRACT 1.1)


class Uplink:
    def __init__(self, cfg: AgentConfig, store: ReadingQueue, client_id: str | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.inflight: dict[int, tuple[int, int, int, float]] = {}  # mid -> (first id, last id, readings, sent)
        self.sent_upto = 0  # highest queue id handed to paho
        self.connected = threading.Event()
        self.connected_at = 0.0  # monotonic time the agent's thread first saw the current connection
        self.batches_sent = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"kawal-agent-{cfg.tracker_id}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if cfg.username is not None:
            self.client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            self.client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
        self.client.will_set(cfg.status_topic, "offline", qos=1, retain=True)
        self.client.max_inflight_messages_set(cfg.inflight_max + 2)  # room for the status messages
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    # -- paho's thread ---------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("broker refused the connection: %s", rc)
            return
        log.info("connected to %s:%d", self.cfg.host, self.cfg.port)
        client.publish(self.cfg.status_topic, "online", qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        if self.connected.is_set():
            log.warning("disconnected from the broker (%s); readings queue until it returns", rc)
        self.connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        self.acks.put(mid)

    # -- the agent's thread ----------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def pump(self) -> int:
        """Forget acknowledged readings, then hand paho what the queue holds beyond the inflight window.
        Returns the readings acknowledged."""
        acked = 0
        while True:
            try:
                mid = self.acks.get_nowait()
            except queue.Empty:
                break
            span = self.inflight.pop(mid, None)
            if span is not None:  # None: the `online` status
                self.store.remove(span[0], span[1])
                acked += span[2]
        if not self.connected.is_set():
            self.connected_at = 0.0
            return acked
        now = time.monotonic()
        if self.connected_at == 0.0:
            self.connected_at = now
        self._expire(now)
        while len(self.inflight) < self.cfg.inflight_max:
            rows = self.store.peek(self.sent_upto, self.cfg.batch_max)
            if not rows:
                break
            payload, used = self._payload(rows)
            info = self.client.publish(self.cfg.telemetry_topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # Not sent (the connection just dropped): paho keeps it and sends it after reconnecting.
                log.info("publish deferred: %s", mqtt.error_string(info.rc))
            self.inflight[info.mid] = (rows[0][0], rows[used - 1][0], used, now)
            self.sent_upto = rows[used - 1][0]
            if used > 1:
                self.batches_sent += 1
                log.info("sent a backlog batch of %d readings", used)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
        return acked

    def _expire(self, now: float) -> None:
        """A safety valve: if a PUBACK has not come ACK_TIMEOUT_S into a connection, stop waiting for it and
        send the queue again from its start (the server drops what it already has by `seq`)."""
        oldest = min((sent for *_, sent in self.inflight.values()), default=now)
        if now - max(oldest, self.connected_at) > ACK_TIMEOUT_S:
            log.warning(
                "no PUBACK for %d messages in %.0f s; sending the queue again", len(self.inflight), ACK_TIMEOUT_S
            )
            self.inflight.clear()
            self.sent_upto = 0

    @staticmethod
    def _payload(rows: list[tuple[int, str]]) -> tuple[str, int]:
        """One reading as an object, several as a JSON array that stays under MAX_PAYLOAD bytes."""
        if len(rows) == 1:
            return rows[0][1], 1
        size, used = 2, 0
        for _, body in rows:
            if used and size + len(body) + 1 > MAX_PAYLOAD:
                break
            size += len(body) + 1
            used += 1
        if used == 1:
            return rows[0][1], 1
        return "[" + ",".join(body for _, body in rows[:used]) + "]", used

    def idle(self) -> bool:
        return not self.inflight

    def stop(self, timeout: float = 5.0) -> None:
        """Say `offline` (retained) and disconnect; unacknowledged readings stay queued for next time."""
        if self.connected.is_set():
            info = self.client.publish(self.cfg.status_topic, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # not sent in time: the Last Will says it
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()
