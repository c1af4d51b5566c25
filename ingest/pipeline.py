"""The ingest pipeline: one worker thread between the MQTT network thread and the stores.

For each batch of queued messages: decode, store readings + rejections + registry updates in ONE SQLite
transaction, advance the clock, run detection on the new readings, and only then acknowledge the messages.
A crash anywhere before the commit leaves the messages unacknowledged, so the broker redelivers them; a
crash after the commit but before the ack redelivers readings that the dedup index then ignores.

No fixed sleeps: the worker takes whatever is queued (up to MAX_BATCH_MESSAGES), so batches grow under
load and the broker's inflight window (mosquitto's max_inflight_messages, MQTT 5 Receive Maximum) is
released as soon as the batch commits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from devices.decode import INTERNAL_ERROR, Decoded, Rejection, decode_message, may_open_seal
from devices.reading import Reading
from devices.registry import TrackerRegistry
from ingest.flood import FloodGuard
from ingest.mqtt import Consumer, InboundMessage
from ingest.readings import ReadingStore
from ingest.seqgaps import SeqGaps
from kawal.backoff import Backoff
from kawal.clock import Clock, EventClock
from kawal.metrics import Metrics
from storage import Database, OperationalError, StorageError
from storage.errors import storage_advice

log = logging.getLogger(__name__)

MAX_BATCH_MESSAGES = 2000
LINGER_S = 0.002
LINGER_BELOW = 256  # messages: a batch this small is worth a linger when the window allows it
RETRY_MIN_S = 0.2
RETRY_MAX_S = 10.0


class Detector(Protocol):
    def process(self, readings: Sequence[Reading]) -> None: ...

    def on_status(self, tracker_id: str, status: str, at: float) -> None: ...

    def tick(self, now: float) -> None: ...


class NullDetector:
    """Detects nothing; for tests and benchmarks of the ingest path alone."""

    def process(self, readings: Sequence[Reading]) -> None:
        return None

    def on_status(self, tracker_id: str, status: str, at: float) -> None:
        return None

    def tick(self, now: float) -> None:
        return None


@dataclass(slots=True)
class _Item:
    msg: InboundMessage
    decoded: Decoded


_STOP = object()
_DROPPED = Decoded("telemetry", None)  # nothing to store: a flood message over the tracker's limit


class IngestPipeline:
    def __init__(
        self,
        db: Database,
        readings: ReadingStore,
        registry: TrackerRegistry,
        detector: Detector,
        clock: Clock,
        metrics: Metrics,
        ack: Callable[[InboundMessage], None],
        tick_interval_s: float = 1.0,
        ack_many: Callable[[Sequence[InboundMessage]], None] | None = None,
        linger_s: float | None = None,
        detect_batch: Callable[[Sequence[tuple[InboundMessage, Decoded]], Sequence[Reading]], None] | None = None,
        flood: FloodGuard | None = None,
        gaps: SeqGaps | None = None,
    ) -> None:
        self.db = db
        self.readings = readings
        self.registry = registry
        self.detector = detector
        self.clock = clock
        self.metrics = metrics
        self.ack = ack
        owner = getattr(ack, "__self__", None)
        self._consumer = owner if isinstance(owner, Consumer) and ack == owner.ack else None
        if ack_many is None and self._consumer is not None:
            ack_many = self._consumer.ack_many  # one call per batch
        self.ack_many = ack_many
        # None: linger only in front of an MQTT 5 consumer (see _gather); 0 never; > 0 always.
        self.linger_s = linger_s
        self.tick_interval_s = tick_interval_s
        # Cluster mode: the detector takes every decoded message of a stored batch (with the readings new to
        # the store), in place of process/on_status: a replay after a failover is new to it, not to the store.
        self.detect_batch = detect_batch
        self.flood = flood  # counts (and may drop) a tracker's messages beyond its rate (ingest/flood.py)
        self.gaps = gaps  # counts the readings trackers never delivered (ingest/seqgaps.py)
        self._event_clock = isinstance(clock, EventClock)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._abort = threading.Event()
        self._urgent = threading.Event()  # a seal may be open in what is queued: cut the linger short
        self.store_error: str | None = None  # the last storage failure, until a store succeeds (for /healthz)
        self._in_hand_since: float | None = None  # received_at of the oldest message being handled
        self.messages_done = 0  # messages fully handled (stored and acknowledged), for tests and benchmarks

    # -- producer side (the MQTT network thread) -----------------------------------------------------------

    def submit(self, msg: InboundMessage) -> None:
        """Queue a message. Never blocks: this runs on paho's network thread."""
        self._queue.put(msg)
        if may_open_seal(msg.payload):
            self._urgent.set()

    def queued(self) -> int:
        return self._queue.qsize()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def behind_s(self, now: float) -> float:
        """How long the oldest message not yet stored and acknowledged has waited (0 when idle). Messages
        still queued are younger than the batch in hand, so that batch's first message is the oldest."""
        since = self._in_hand_since
        return max(0.0, now - since) if since is not None else 0.0

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._abort.clear()
        self._thread = threading.Thread(target=self._run, name="ingest-pipeline", daemon=True)
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop the worker. With drain, what is queued now is stored and acknowledged first; without,
        it is left unacknowledged for the broker to redeliver."""
        if self._thread is None:
            return
        if not drain:
            self._abort.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("ingest pipeline did not stop within %.0fs", timeout)
        self._thread = None

    # -- the worker ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick_interval_s
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                first = None
            batch: list[InboundMessage] = []
            if first is _STOP:
                stopping = True
            elif first is not None:
                batch.append(first)  # type: ignore[arg-type]
                stopping = self._gather(batch)
            if batch and not self._abort.is_set():
                self._handle(batch)
            if self._abort.is_set():
                return
            if (batch and self._event_clock) or time.monotonic() >= next_tick:
                self._tick()
                next_tick = time.monotonic() + self.tick_interval_s
        self._save_gaps(always=True)

    def _drain(self, batch: list[InboundMessage]) -> bool:
        """Move what is queued into the batch; True when the stop marker was reached."""
        while len(batch) < MAX_BATCH_MESSAGES:
            try:
                m = self._queue.get_nowait()
            except queue.Empty:
                return False
            if m is _STOP:
                return True
            batch.append(m)  # type: ignore[arg-type]
        return False

    def _gather(self, batch: list[InboundMessage]) -> bool:
        """Fill the batch with what is queued; True when the stop marker was reached.

        With a small batch and a wide inflight window, first let the network thread run alone for up to
        LINGER_S. Without that, under load the worker wakes for every few messages and the two threads
        trade the GIL several times per message; the benchmark shows that ping-pong costing more than
        decoding and storing together. The linger is bounded, only happens while the broker may still
        send thousands of unacknowledged messages (MQTT 5 Receive Maximum), and never with a small window
        such as mosquitto's default of 20 for MQTT 3.1.1 sessions, where acks must flow at once.
        """
        if self._drain(batch):
            return True
        if len(batch) < LINGER_BELOW:
            linger = self._linger()
            if linger > 0:
                self._urgent.wait(linger)
                self._urgent.clear()
                return self._drain(batch)
        return False

    def _linger(self) -> float:
        if self.linger_s is not None:
            return self.linger_s
        owner = self._consumer
        return LINGER_S if owner is not None and owner.protocol == "5" else 0.0

    def _tick(self) -> None:
        try:
            self.detector.tick(self.clock.now())
        except Exception:
            log.exception("detector tick failed")
            self.metrics.detector_errors.inc()
        self._save_gaps()

    def _save_gaps(self, always: bool = False) -> None:
        if self.gaps is None:
            return
        try:
            self.gaps.save() if always else self.gaps.save_if_due()
        except StorageError as e:  # kept in memory and saved with the next attempt
            log.error("saving the seq gap counts failed (%s); retrying later", e)

    def _handle(self, batch: list[InboundMessage]) -> None:
        t0 = time.perf_counter()
        self._in_hand_since = batch[0].received_at
        try:
            self._handle_batch(batch, t0)
        finally:
            self._in_hand_since = None

    def _handle_batch(self, batch: list[InboundMessage], t0: float) -> None:
        self.metrics.messages_received.inc(len(batch))
        now = time.time()
        flood = self.flood
        if flood is None:
            items = [_Item(m, self._decode(m, now)) for m in batch]
        else:  # a dropped flood message decodes to nothing, and is acknowledged with its batch
            items = [_Item(m, self._decode(m, now) if flood.admit(m.topic, m.received_at) else _DROPPED) for m in batch]
        new = self._store_with_retry(items, now)
        if new is None:
            return  # stopping while storage is failing: nothing acknowledged, the broker redelivers
        self._account(items, new)
        if self.gaps is not None and new:
            self.gaps.observe(new)
        if self.detect_batch is not None:
            try:
                self.detect_batch([(it.msg, it.decoded) for it in items], new)
            except Exception:
                log.exception("detector failed on a batch of %d messages", len(items))
                self.metrics.detector_errors.inc()
        elif new:
            self.clock.observe(max(r.ts for r in new))
            try:
                self.detector.process(new)
            except Exception:
                log.exception("detector failed on %d readings", len(new))
                self.metrics.detector_errors.inc()
        for it in items:
            d = it.decoded
            if d.status is not None and d.tracker_id is not None:
                try:
                    self.detector.on_status(d.tracker_id, d.status, it.msg.received_at)
                except Exception:
                    log.exception("detector failed on status of %s", d.tracker_id)
                    self.metrics.detector_errors.inc()
        self._ack_all(items)
        self.messages_done += len(items)
        self.metrics.ingest_queue.set(self._queue.qsize())
        self.metrics.ingest_batch_seconds.observe(time.perf_counter() - t0)

    def _ack_all(self, items: list[_Item]) -> None:
        # A lost ack only means a redelivery, which the dedup index absorbs.
        if self.ack_many is not None:
            try:
                self.ack_many([it.msg for it in items])
            except Exception:
                log.exception("ack failed")
            return
        for it in items:
            try:
                self.ack(it.msg)
            except Exception:
                log.exception("ack failed")

    @staticmethod
    def _decode(m: InboundMessage, now: float) -> Decoded:
        try:
            return decode_message(m.topic, m.payload, now)
        except Exception as e:  # a decoder bug must not stop ingest for everyone else
            log.exception("decoding failed for %r", m.topic)
            return Decoded("telemetry", None, rejections=[Rejection(INTERNAL_ERROR, repr(e)[:200], m.payload)])

    def _account(self, items: list[_Item], new: list[Reading]) -> None:
        m = self.metrics
        total = sum(len(it.decoded.readings) for it in items)
        if new:
            m.readings_stored.inc(len(new))
        if total > len(new):
            m.readings_duplicate.inc(total - len(new))
        reasons: Counter[str] = Counter(j.reason for it in items for j in it.decoded.rejections)
        for reason, n in reasons.items():
            m.readings_rejected.labels(reason).inc(n)

    # -- storage -------------------------------------------------------------------------------------------

    def _store_with_retry(self, items: list[_Item], now: float) -> list[Reading] | None:
        """Store the batch; retry with backoff while the database is unavailable (locked, disk full)."""
        backoff = Backoff(RETRY_MIN_S, RETRY_MAX_S)
        while True:
            try:
                new = self._store(items, now)
            except OperationalError as e:
                delay = backoff.next()
                if self.store_error is None:
                    log.error("%s", storage_advice(str(e), len(items), self.db.location))
                self.store_error = str(e)
                log.error("storing %d messages failed (%s); retrying in %.1fs", len(items), e, delay)
                if self._abort.wait(delay):
                    return None
                continue
            if self.store_error is not None:
                log.warning("the store takes writes again; ingest goes on")
                self.store_error = None
            return new

    def _store(self, items: list[_Item], now: float) -> list[Reading]:
        try:
            return self._store_tx(items, now)
        except OperationalError:
            raise
        except Exception:
            if len(items) == 1:
                return self._store_poison(items[0], now)
            # Something in the batch cannot be stored: find it by storing message by message.
            log.exception("storing a batch failed; storing its %d messages one by one", len(items))
            out: list[Reading] = []
            for it in items:
                out.extend(self._store(list((it,)), now))
            return out

    def _store_tx(self, items: list[_Item], now: float) -> list[Reading]:
        all_readings: list[Reading] = []
        for it in items:
            all_readings.extend(it.decoded.readings)
        with self.db.write() as conn:
            # Registers first-seen trackers too, with their latest state (ingest.latest).
            new = self.readings.insert(conn, all_readings, now)
            for it in items:
                d = it.decoded
                if d.rejections:
                    self.readings.add_rejections(conn, it.msg.topic, d.rejections, now)
                if d.status is not None and d.tracker_id is not None:
                    self.registry.set_status(conn, d.tracker_id, d.status, it.msg.received_at)
        return new

    def _store_poison(self, it: _Item, now: float) -> list[Reading]:
        """One message that cannot be stored: keep it as a rejection so the stream goes on."""
        log.exception("message on %r cannot be stored; rejecting it", it.msg.topic)
        n = max(1, len(it.decoded.readings))
        it.decoded = Decoded(
            it.decoded.kind,
            it.decoded.tracker_id,
            rejections=[Rejection(INTERNAL_ERROR, "could not be stored", it.msg.payload)] * n,
        )
        with self.db.write() as conn:
            self.readings.add_rejections(conn, it.msg.topic, it.decoded.rejections[:1], now)
        return []
