"""The child side of the MQTT front (ingest/front.py): a consumer, a sender thread and an ack thread.

Kept free of everything but the consumer's own imports, so the process starts in a fraction of a second.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from devices.decode import may_open_seal
from ingest.mqtt import InboundMessage, MqttConsumer
from kawal.metrics import Metrics
from kawal.settings import Settings

# topic, payload, mid, qos, received_at, retain, session: plain tuples pickle several times faster than objects
MessageTuple = tuple[str, bytes, int, int, float, bool, int]

LINGER_S = 0.001  # after the first message, let paho read on for this long so the pipe carries batches
STATUS_EVERY_S = 0.05
MAX_SEND = 2000  # messages per pipe write


class _Forward(logging.Handler):
    """Queues the child's log records for the service process, which emits them with its own handlers."""

    def __init__(self, out: deque[dict[str, Any]], wake: threading.Event) -> None:
        super().__init__()
        self.out = out
        self.wake = wake

    def emit(self, record: logging.LogRecord) -> None:
        fields = dict(record.__dict__)
        fields["msg"] = record.getMessage()
        fields["args"] = None
        if record.exc_info:  # a traceback does not pickle: its text does
            fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
        fields["exc_info"] = None
        self.out.append(fields)
        self.wake.set()


class _Child:
    def __init__(self, settings: Settings, url: str, out: Connection, ctl: Connection) -> None:
        self.out = out
        self.ctl = ctl
        self.queue: deque[MessageTuple] = deque()
        self.logs: deque[dict[str, Any]] = deque()
        self.wake = threading.Event()
        self.urgent = threading.Event()  # a seal may be open: send without the linger
        self.signalled = False
        self.done = threading.Event()
        self.consumer = MqttConsumer(settings, url, self.on_message, Metrics())
        self.sent_status: dict[str, Any] | None = None

    def on_message(self, m: InboundMessage) -> None:
        # On paho's network thread: append, and wake the sender only for the first message of a batch.
        self.queue.append((m.topic, m.payload, m.mid, m.qos, m.received_at, m.retain, m.session))
        if may_open_seal(m.payload):
            self.urgent.set()
        if not self.signalled:
            self.signalled = True
            self.wake.set()

    def status(self) -> dict[str, Any]:
        c = self.consumer
        return {
            "connected": c.connected.is_set(),
            "subscribed": c.subscribed.is_set(),
            "reason": c.reason,
            "protocol": c.protocol,
        }

    def send(self) -> None:
        """The sender thread: logs, status changes and message batches, in that order, until stopped."""
        while not self.done.is_set():
            if self.wake.wait(STATUS_EVERY_S):
                self.urgent.wait(LINGER_S)
            self.urgent.clear()
            self.wake.clear()
            self.signalled = False  # before draining: a message appended from here on wakes the next round
            if not self.flush():
                return

    def flush(self) -> bool:
        try:
            if self.logs:
                records = [self.logs.popleft() for _ in range(len(self.logs))]
                self.out.send_bytes(pickle.dumps(("l", records), protocol=pickle.HIGHEST_PROTOCOL))
            status = self.status()
            if status != self.sent_status:
                self.out.send_bytes(pickle.dumps(("s", status), protocol=pickle.HIGHEST_PROTOCOL))
                self.sent_status = status
            q = self.queue
            while q:
                batch = [q.popleft() for _ in range(min(len(q), MAX_SEND))]
                self.out.send_bytes(pickle.dumps(("m", batch), protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:  # the service process is gone
            self.done.set()
            return False
        return True

    def take_acks(self) -> None:
        """The ack thread: acknowledgements from the service, until it says stop or goes away."""
        while True:
            try:
                kind, body = pickle.loads(self.ctl.recv_bytes())
            except (EOFError, OSError):
                return
            if kind == "ack":
                self.consumer.ack_ids(body)
            elif kind == "stop":
                return


def run_front(settings: Settings, url: str, out: Connection, ctl: Connection, level: int) -> None:
    """The child process's entry point."""
    child = _Child(settings, url, out, ctl)
    root = logging.getLogger()
    root.handlers[:] = [_Forward(child.logs, child.wake)]
    root.setLevel(level)
    sender = threading.Thread(target=child.send, name="mqtt-front-send", daemon=True)
    sender.start()
    child.consumer.start()
    child.take_acks()
    child.consumer.stop()  # disconnects after the PUBACKs queued so far
    child.done.set()
    child.wake.set()
    sender.join(5)
    child.flush()
    out.close()
