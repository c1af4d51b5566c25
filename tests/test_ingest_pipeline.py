"""The ingest pipeline's own guarantees, driven directly (no broker): ack only after the commit, one
transaction per batch, detection failures contained, time-driven ticks, draining on stop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import ingest.pipeline as pipeline_mod
from devices.decode import Decoded
from devices.reading import Reading
from devices.registry import TrackerRegistry
from ingest.mqtt import InboundMessage
from ingest.pipeline import IngestPipeline, NullDetector
from ingest.readings import ReadingStore
from kawal.clock import Clock, EventClock, WallClock
from kawal.metrics import Metrics
from storage.sqlite import SqliteDatabase

NOW = time.time()


class RecordingDetector:
    def __init__(self, fail_on: str | None = None) -> None:
        self.readings: list[Reading] = []
        self.statuses: list[tuple[str, str, float]] = []
        self.ticks: list[float] = []
        self.fail_on = fail_on

    def process(self, readings: Sequence[Reading]) -> None:
        if self.fail_on and any(r.tracker_id == self.fail_on for r in readings):
            raise RuntimeError("detector bug")
        self.readings.extend(readings)

    def on_status(self, tracker_id: str, status: str, at: float) -> None:
        self.statuses.append((tracker_id, status, at))

    def tick(self, now: float) -> None:
        self.ticks.append(now)


class Rig:
    def __init__(
        self,
        tmp: Path,
        detector: Any = None,
        clock: Clock | None = None,
        tick: float = 1.0,
        store: ReadingStore | None = None,
    ) -> None:
        self.db = SqliteDatabase(tmp / "kawal.db")
        self.store = store or ReadingStore(self.db)
        self.registry = TrackerRegistry(self.db)
        self.metrics = Metrics()
        self.detector = detector or RecordingDetector()
        self.acked: list[int] = []
        self._lock = threading.Lock()
        self.p = IngestPipeline(
            self.db,
            self.store,
            self.registry,
            self.detector,
            clock or WallClock(),
            self.metrics,
            self._ack,
            tick_interval_s=tick,
        )
        self._mid = 0

    def _ack(self, msg: InboundMessage) -> None:
        # What the broker sees: at this point the readings must already be committed.
        assert self._stored_or_rejected(msg), msg
        with self._lock:
            self.acked.append(msg.mid)

    def _stored_or_rejected(self, msg: InboundMessage) -> bool:
        c = self.db.connect()
        try:
            return bool(
                c.execute("SELECT count(*) FROM readings").fetchone()[0]
                + c.execute("SELECT count(*) FROM rejected").fetchone()[0]
                + c.execute("SELECT count(*) FROM trackers WHERE status IS NOT NULL").fetchone()[0]
            )
        finally:
            c.close()

    def send(self, topic: str, body: Any, qos: int = 1) -> int:
        self._mid += 1
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.p.submit(InboundMessage(topic, payload, self._mid, qos, time.time()))
        return self._mid

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels or None) or 0.0


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    r.p.start()
    yield r
    r.p.stop()


def tel(tracker: str = "TRK-1") -> str:
    return f"kawal/v1/{tracker}/telemetry"


def test_readings_stored_counted_detected_and_acked(rig: Rig) -> None:
    rig.send(tel(), [{"ts": NOW - 10, "seq": 1, "lat": -7.5, "lon": 112.2}, {"ts": NOW - 5, "seq": 2}])
    rig.send(tel(), {"ts": NOW - 10, "seq": 1, "lat": -7.5, "lon": 112.2})  # duplicate
    rig.send(tel(), b"{oops")
    rig.send("kawal/v1/TRK-1/status", b"online")
    rig.send("some/other/topic", b"x")
    wait_for(lambda: len(rig.acked) == 5)
    assert sorted(rig.acked) == [1, 2, 3, 4, 5]
    assert rig.store.count() == 2
    assert [r.seq for r in rig.detector.readings] == [1, 2]  # the duplicate is not detected twice
    assert [s[:2] for s in rig.detector.statuses] == [("TRK-1", "online")]
    assert rig.metric("kawal_messages_received_total") == 5
    assert rig.metric("kawal_readings_stored_total") == 2
    assert rig.metric("kawal_readings_duplicate_total") == 1
    assert rig.metric("kawal_readings_rejected_total", reason="not_json") == 1
    reg = rig.registry.get("TRK-1")
    assert reg is not None and reg["status"] == "online"


def test_nothing_is_acked_before_the_commit(rig: Rig) -> None:
    blocker = rig.db.connect()
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        rig.send(tel(), {"ts": NOW - 1, "seq": 1})
        # The worker has had the message in hand for 0.3 s, waiting for the lock: and acknowledged nothing.
        wait_for(lambda: rig.p.behind_s(time.time()) > 0.3)
        assert rig.acked == [] and rig.p.messages_done == 0
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    wait_for(lambda: rig.acked == [1])
    assert rig.store.count() == 1


def test_detector_failure_is_logged_counted_and_not_fatal(tmp_path: Path) -> None:
    rig = Rig(tmp_path, detector=RecordingDetector(fail_on="BAD"))
    rig.p.start()
    try:
        rig.send(tel("BAD"), {"ts": NOW - 1})
        wait_for(lambda: len(rig.acked) == 1)
        rig.send(tel("GOOD"), {"ts": NOW - 1})
        wait_for(lambda: len(rig.acked) == 2)
        assert rig.store.count() == 2  # stored even though detection failed
        assert [r.tracker_id for r in rig.detector.readings] == ["GOOD"]
        assert rig.metric("kawal_detector_errors_total") == 1
    finally:
        rig.p.stop()


class PoisonStore(ReadingStore):
    """Fault injection: the database refuses one tracker's readings (a non-transient error)."""

    def insert(self, conn: Any, readings: Sequence[Reading], received_at: float) -> list[Reading]:
        if any(r.tracker_id == "POISON" for r in readings):
            raise ValueError("cannot bind parameter")
        return super().insert(conn, readings, received_at)


def test_a_message_that_cannot_be_stored_does_not_block_the_others(tmp_path: Path) -> None:
    db_rig = Rig(tmp_path)
    rig = Rig(tmp_path, store=PoisonStore(db_rig.db))
    for i in range(5):
        rig.send(tel("OK"), {"ts": NOW - 10 + i, "seq": i})
    rig.send(tel("POISON"), {"ts": NOW - 1, "seq": 1})
    rig.send(tel("OK"), {"ts": NOW, "seq": 99})
    rig.p.start()  # all seven go into one batch
    try:
        wait_for(lambda: len(rig.acked) == 7)
        assert rig.store.count() == 6
        (rej,) = rig.store.rejected()
        assert rej["reason"] == "internal_error" and rej["topic"] == tel("POISON")
        assert rig.metric("kawal_readings_rejected_total", reason="internal_error") == 1
    finally:
        rig.p.stop()


def test_a_decoder_bug_becomes_an_internal_error_rejection(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pipeline_mod.decode_message

    def buggy(topic: str, payload: bytes, now: float) -> Decoded:
        if b"boom" in payload:
            raise KeyError("boom")
        return real(topic, payload, now)

    monkeypatch.setattr(pipeline_mod, "decode_message", buggy)
    rig.send(tel(), {"ts": NOW - 1, "boom": 1})
    rig.send(tel(), {"ts": NOW - 2})
    wait_for(lambda: len(rig.acked) == 2)
    assert rig.store.count() == 1
    assert rig.store.rejected()[0]["reason"] == "internal_error"


def test_event_clock_follows_readings_and_ticks_after_each_batch(tmp_path: Path) -> None:
    clock = EventClock()
    rig = Rig(tmp_path, clock=clock, tick=3600)
    rig.p.start()
    try:
        rig.send(tel(), [{"ts": NOW - 100}, {"ts": NOW - 50}])
        wait_for(lambda: len(rig.acked) == 1 and len(rig.detector.ticks) >= 1)
        assert clock.now() == NOW - 50
        assert rig.detector.ticks[-1] == NOW - 50
        rig.send(tel(), {"ts": NOW - 75})  # older: the clock does not go back
        wait_for(lambda: len(rig.acked) == 2 and len(rig.detector.ticks) >= 2)
        assert rig.detector.ticks[-1] == NOW - 50
    finally:
        rig.p.stop()


def test_wall_clock_ticks_while_idle(tmp_path: Path) -> None:
    rig = Rig(tmp_path, tick=0.05)
    rig.p.start()
    try:
        wait_for(lambda: len(rig.detector.ticks) >= 5)
        assert rig.detector.ticks == sorted(rig.detector.ticks)
    finally:
        rig.p.stop()


def test_stop_with_drain_handles_everything_queued(tmp_path: Path) -> None:
    rig = Rig(tmp_path, detector=NullDetector())
    for i in range(3000):
        rig.send(tel(f"T{i % 30}"), {"ts": NOW - 4000 + i, "seq": i})
    rig.p.start()
    rig.p.stop(drain=True)
    assert rig.store.count() == 3000 and len(rig.acked) == 3000
    assert rig.p.messages_done == 3000


def test_stop_without_drain_leaves_the_queue_unacked(tmp_path: Path) -> None:
    rig = Rig(tmp_path, detector=NullDetector())
    n = 3 * pipeline_mod.MAX_BATCH_MESSAGES
    for i in range(n):
        rig.send(tel(f"T{i % 30}"), {"ts": NOW - 9000 + i, "seq": i})
    rig.p.start()
    rig.p.stop(drain=False)  # at most the batch in hand is finished; the rest stays queued, unacknowledged
    assert len(rig.acked) <= pipeline_mod.MAX_BATCH_MESSAGES
    assert rig.p.messages_done == len(rig.acked)
    assert rig.store.count() == len(rig.acked)  # what was not acknowledged was not stored either


def test_a_seal_break_cuts_the_linger_short(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.p.linger_s = 60.0  # a batch waits this long for company, unless a seal may be open in it
    rig.p.start()
    try:
        rig.send(tel("TRK-A"), {"ts": NOW - 10, "seq": 1, "seal": "closed"})
        time.sleep(0.5)
        assert rig.acked == [], "the lone closed reading is still lingering"
        rig.send(tel("TRK-B"), {"ts": NOW - 10, "seq": 1, "seal": "open"})
        wait_for(lambda: len(rig.acked) == 2, 20)
        assert {r.seal for r in rig.detector.readings} == {"closed", "open"}
    finally:
        rig.p.stop()
