"""The MQTT front process: paho's network loop in a process of its own.

In one process the paho network thread and the ingest worker share one interpreter lock, so every
microsecond spent decoding, storing and detecting is taken from receiving (benchmarks/ingest.py measured
Kawal with every detector at 69 % of a bare paho subscriber that way). Here a child process runs the
`MqttConsumer` and hands the service process batches of raw messages over a pipe; the service decodes,
stores and detects, and sends the acknowledgements back after each commit. The no-loss rule is unchanged:
the broker gets a PUBACK only for a stored message, whichever process dies first.

`MqttFront` has the consumer's surface (start, stop, ack, ack_many, subscribed, reason, protocol), so the
pipeline and /healthz take either. The child's log records are re-emitted by the service's loggers.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from ingest.front_child import MessageTuple, run_front
from ingest.mqtt import InboundMessage, first_protocol
from kawal.backoff import Backoff
from kawal.metrics import Metrics
from kawal.settings import Settings

log = logging.getLogger(__name__)

RESTART_MIN_S = 0.5
RESTART_MAX_S = 10.0
STOP_TIMEOUT_S = 15.0
_GENERATION = 1 << 32  # a session number carries its process's generation, so acks never cross processes


class MqttFront:
    """Runs the MQTT consumer in a child process, restarts it if it dies, and relays its messages."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        on_message: Callable[[InboundMessage], None],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.url = url
        self._on_message = on_message
        self.metrics = metrics
        self.subscribed = threading.Event()
        self.connected = threading.Event()
        self.reason: str | None = "starting the MQTT process"
        self.protocol = first_protocol(settings)  # until the child says which one it settled on
        self.pid: int | None = None
        self._generation = 0
        self._send_lock = threading.Lock()
        self._ctl: Connection | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._supervisor = threading.Thread(target=self._supervise, name="mqtt-front", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        """Disconnect (after every acknowledgement sent so far) and end the child process."""
        self._stopping.set()
        self._send(("stop", None))
        if self._supervisor is not None:
            self._supervisor.join(STOP_TIMEOUT_S + 5)
            self._supervisor = None

    def ack(self, msg: InboundMessage) -> None:
        self.ack_many((msg,))

    def ack_many(self, msgs: Sequence[InboundMessage]) -> None:
        """Send the batch's acknowledgements to the child, which passes them to paho's manual-ack API.
        Messages of an earlier child are skipped: the broker redelivers them to the current one."""
        generation = self._generation
        ids = [
            (m.mid, m.qos, m.session % _GENERATION)
            for m in msgs
            if m.qos > 0 and m.session // _GENERATION == generation
        ]
        if ids:
            self._send(("ack", ids))

    def _send(self, item: tuple[str, Any]) -> None:
        with self._send_lock:
            ctl = self._ctl
            if ctl is None:
                return
            with contextlib.suppress(OSError):  # the child is gone: its messages go to the next one
                ctl.send_bytes(pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))

    # -- the child -----------------------------------------------------------------------------------------

    def _supervise(self) -> None:
        backoff = Backoff(RESTART_MIN_S, RESTART_MAX_S)
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._run_child()
            except Exception:  # e.g. the process could not be started: retried like a death
                log.exception("the MQTT process failed")
            if self._stopping.is_set():
                break
            if time.monotonic() - started > RESTART_MAX_S:  # it ran a while: a new failure, not the same one
                backoff.reset()
            delay = backoff.next()
            self.reason = "the MQTT process stopped; restarting it"
            log.error("the MQTT process stopped unexpectedly; restarting it in %.1fs", delay)
            self._stopping.wait(delay)

    def _run_child(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fork would copy the service's threads and locks
        msgs_r, msgs_w = ctx.Pipe(duplex=False)
        ctl_r, ctl_w = ctx.Pipe(duplex=False)
        self._generation += 1
        process = ctx.Process(
            target=run_front,
            args=(self.settings, self.url, msgs_w, ctl_r, logging.getLogger().getEffectiveLevel()),
            name="kawal-mqtt",
            daemon=True,
        )
        process.start()
        msgs_w.close()
        ctl_r.close()
        self.pid = process.pid
        with self._send_lock:
            self._ctl = ctl_w
        if self._stopping.is_set():  # stop() came while starting: its message found no pipe
            self._send(("stop", None))
        try:
            self._relay(msgs_r)
        finally:
            with self._send_lock:
                self._ctl = None
            ctl_w.close()
            msgs_r.close()
            process.join(STOP_TIMEOUT_S if self._stopping.is_set() else 1.0)
            if process.is_alive():
                process.kill()
                process.join()
            self._set_status({"connected": False, "subscribed": False, "reason": "the MQTT process stopped"})

    def _relay(self, conn: Connection) -> None:
        """Until the child closes its end: messages to the pipeline, status to the flags, logs to logging."""
        base = self._generation * _GENERATION
        deliver = self._on_message
        while True:
            try:
                kind, body = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return
            if kind == "m":
                batch: list[MessageTuple] = body
                for topic, payload, mid, qos, received_at, retain, session in batch:
                    try:
                        deliver(InboundMessage(topic, payload, mid, qos, received_at, retain, base + session))
                    except Exception:  # one bad hand-off must not stop the relay for everyone
                        log.exception("on_message failed for %r", topic)
            elif kind == "s":
                self._set_status(body)
            elif kind == "l":
                for fields in body:
                    record = logging.makeLogRecord(fields)
                    logging.getLogger(record.name).handle(record)

    def _set_status(self, status: dict[str, Any]) -> None:
        if "protocol" in status:
            self.protocol = status["protocol"]
        self.reason = status.get("reason")
        for flag, name in ((self.connected, "connected"), (self.subscribed, "subscribed")):
            if status.get(name):
                flag.set()
            else:
                flag.clear()
        self.metrics.mqtt_connected.set(1 if status.get("connected") else 0)
