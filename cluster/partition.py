"""Detection per partition: one DetectionEngine for each partition this worker holds.

Everything here runs on the ingest pipeline's thread (the pipeline calls `detect_batch` and `tick`);
other threads (the balancer, the NOTIFY listener) only enqueue operations, applied before the next
batch or tick. A partition's engine sees its messages in stream order, every one of them (a replay after
a failover brings readings the store already has but this engine has not seen), and under the event
clock also the bridge's clock messages, so its timers fire at the event times a single process fires them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anomaly.engine import DetectionEngine
from cluster.leases import LeaseLost, Leases
from cluster.messages import StreamMessage
from cluster.subjects import partition_of
from devices.decode import Decoded
from devices.reading import Reading
from ingest.mqtt import InboundMessage
from kawal.metrics import Metrics
from kawal.trips import Trip, TripRepository

log = logging.getLogger(__name__)

NEG_INF = float("-inf")


@dataclass
class _Held:
    engine: DetectionEngine
    token: int
    done: int  # the stream sequence of the last message this engine took
    now: float = NEG_INF  # the partition's event clock


class PartitionedDetector:
    def __init__(
        self,
        make_engine: Callable[[], DetectionEngine],
        trips: TripRepository,
        leases: Leases,
        partitions: int,
        event_clock: bool,
        snapshot_interval_s: float,
        metrics: Metrics,
    ) -> None:
        self.make_engine = make_engine
        self.trips = trips
        self.leases = leases
        self.partitions = partitions
        self.event_clock = event_clock
        self.snapshot_interval_s = snapshot_interval_s
        self.metrics = metrics
        self._held: dict[int, _Held] = {}
        self._ops: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._last_snapshot = time.monotonic()
        self._trips: dict[int, list[Trip]] | None = None  # by partition, read once per round of adoptions

    # ---- from other threads ----------------------------------------------------------------------

    def adopt(self, part: int, token: int, seq: int, state: bytes | None) -> None:
        self._ops.put(lambda: self._adopt(part, token, seq, state))

    def release(self, part: int, saved: threading.Event) -> None:
        """Snapshot the partition and forget it; `saved` is set when done (also when it was not held)."""
        self._ops.put(lambda: self._release(part, saved))

    def drop_all(self) -> None:
        """The leases are lost: stop detecting at once, without writing (the next owner replays)."""
        self._ops.put(self._held.clear)

    def trip_changed(self, trip_id: str) -> None:
        self._ops.put(lambda: self._trip_changed(trip_id))

    def reload_trips(self) -> None:
        """Trip changes may have been missed (the listener reconnected): every held engine reads them again."""
        self._ops.put(self._reload_trips)

    def held(self) -> list[int]:
        return sorted(self._held)

    # ---- the pipeline thread ---------------------------------------------------------------------

    def _apply_ops(self) -> None:
        self._trips = None
        while True:
            try:
                op = self._ops.get_nowait()
            except queue.Empty:
                return
            try:
                op()
            except Exception:
                log.exception("cluster operation failed")

    def _adopt(self, part: int, token: int, seq: int, state: bytes | None) -> None:
        engine = self.make_engine()
        if self._trips is None:  # a worker that starts adopts many partitions at once: one read for all
            self._trips = {}
            for t in self.trips.list():
                self._trips.setdefault(partition_of(t.tracker_id, self.partitions), []).append(t)
        engine.set_trips(self._trips.get(part, []))
        if state is not None:
            try:
                engine.restore(state)
            except ValueError:
                log.exception("partition %d: snapshot unreadable; detection starts afresh", part)
        self._held[part] = _Held(engine, token, seq)
        log.info("partition %d adopted from stream sequence %d", part, seq)

    def _release(self, part: int, saved: threading.Event) -> None:
        try:
            h = self._held.pop(part, None)
            if h is not None:
                self.leases.save(part, h.done, h.engine.snapshot())
        except LeaseLost:
            log.warning("partition %d released without a snapshot: the lease was lost", part)
        finally:
            saved.set()

    def _reload_trips(self) -> None:
        self._trips = None
        by_part: dict[int, list[Trip]] = {}
        for t in self.trips.list():
            by_part.setdefault(partition_of(t.tracker_id, self.partitions), []).append(t)
        for part, h in self._held.items():
            h.engine.set_trips(by_part.get(part, []))

    def _trip_changed(self, trip_id: str) -> None:
        self._trips = None  # an adoption after this reads the trips again
        trip = self.trips.get(trip_id)
        if trip is None:
            return
        h = self._held.get(partition_of(trip.tracker_id, self.partitions))
        if h is not None:
            h.engine.upsert_trip(trip)

    def detect_batch(self, batch: Sequence[tuple[InboundMessage, Decoded]], new: Sequence[Reading]) -> None:
        """Every reading and status of the batch's messages, per partition in stream order."""
        self._apply_ops()
        pending: dict[int, list[Reading]] = {}
        for msg, decoded in batch:
            if not isinstance(msg, StreamMessage):
                continue
            h = self._held.get(msg.partition)
            if h is None or h.token != msg.token or msg.mid <= h.done:
                continue  # not ours (any more), or taken already: the owner's replay covers it
            h.done = msg.mid
            if msg.clock is not None:
                self._flush(msg.partition, h, pending)
                if msg.clock > h.now:
                    h.now = msg.clock
                    h.engine.tick(msg.clock)
                continue
            if decoded.readings:
                pending.setdefault(msg.partition, []).extend(decoded.readings)
                top = max(r.ts for r in decoded.readings)
                if top > h.now:
                    h.now = top
            if decoded.status is not None and decoded.tracker_id is not None:
                self._flush(msg.partition, h, pending)
                h.engine.on_status(decoded.tracker_id, decoded.status, msg.received_at)
        for part, h in list(self._held.items()):
            self._flush(part, h, pending)

    def _flush(self, part: int, h: _Held, pending: dict[int, list[Reading]]) -> None:
        rs = pending.pop(part, None)
        if rs:
            h.engine.process(rs)

    # The Detector protocol of ingest.pipeline (detect_batch takes the place of process and on_status).
    def process(self, readings: Sequence[Reading]) -> None:
        return None

    def on_status(self, tracker_id: str, status: str, at: float) -> None:
        return None

    def tick(self, now: float) -> None:
        self._apply_ops()
        for h in self._held.values():
            # Under the event clock each partition keeps its own time (its stream's clock messages).
            h.engine.tick(h.now if self.event_clock else now)
        if time.monotonic() - self._last_snapshot >= self.snapshot_interval_s:
            self.save_snapshots()

    def save_snapshots(self) -> None:
        self._last_snapshot = time.monotonic()
        for part, h in list(self._held.items()):
            try:
                self.leases.save(part, h.done, h.engine.snapshot())
            except LeaseLost:
                log.warning("lease connection lost; dropping every partition")
                self._held.clear()
                return
