"""The detection engine as the service runs it: behind one lock, with rolling snapshots and trip reloads.

Snapshots roll: the tracker states are split into `SNAPSHOT_SHARDS` slices, and one slice is saved every
`snapshot_interval_s / SNAPSHOT_SHARDS`, so the ingest worker never stops for the whole fleet at once
(encoding 100,000 states takes about half a second; a slice of them a few tens of milliseconds). Each row
records the last reading its states reflect (`reading_id`) and the last reading stored when its round
began (`round_reading_id`). A restart loads every row, keeps each tracker's newest state, and replays the
stored readings after the oldest round's start, skipping for each tracker what its state already holds.
A tracker first seen after a round began is in no row of that round; its readings all lie after the
round's start, so the replay gives it all of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from anomaly.engine import DetectionEngine
from anomaly.state import TrackerState, decode_states
from devices.reading import Reading
from ingest.readings import ReadingStore
from kawal.gcpause import gc_paused
from kawal.trips import Trip, TripRepository
from storage import Database

log = logging.getLogger(__name__)

REPLAY_BATCH = 20000
TRIPS_POLL_S = 5.0
SNAPSHOT_SHARDS = 16


class SerialDetector:
    """The detection engine behind one lock, with snapshots and trip reloads done between batches.

    `tick` runs on the ingest worker after a batch is fully stored and processed, so a snapshot slice taken
    there reflects exactly the readings up to `readings.max_id()`.
    """

    def __init__(
        self,
        engine: DetectionEngine,
        db: Database,
        readings: ReadingStore,
        trips: TripRepository,
        snapshot_interval_s: float,
        shards: int = SNAPSHOT_SHARDS,
    ) -> None:
        self.engine = engine
        self.db = db
        self.readings = readings
        self.trips = trips
        self.snapshot_interval_s = snapshot_interval_s
        self.shards = shards
        self._lock = threading.Lock()
        self._last_snapshot = time.monotonic()
        self._last_trips_poll = time.monotonic()
        self._trips_version = self._read_trips_version()
        self._round: list[str] = []  # tracker ids of the current round, in slice order
        self._round_upto = 0
        self._next_shard = 0

    # The Detector protocol of ingest.pipeline.
    def process(self, readings: Sequence[Reading]) -> None:
        with self._lock:
            self.engine.process(readings)

    def on_status(self, tracker_id: str, status: str, at: float) -> None:
        with self._lock:
            self.engine.on_status(tracker_id, status, at)

    def tick(self, now: float) -> None:
        with self._lock:
            self.engine.tick(now)
        mono = time.monotonic()
        if mono - self._last_trips_poll >= TRIPS_POLL_S:
            self._last_trips_poll = mono
            self.reload_trips_if_changed()
        if mono - self._last_snapshot >= self.snapshot_interval_s / self.shards:
            self.save_snapshot_slice()

    # Trips changed through the API arrive here; a bulk import by CLI is noticed by polling.
    def upsert_trip(self, trip: Trip) -> None:
        with self._lock:
            self.engine.upsert_trip(trip)
            self._trips_version = self._read_trips_version()

    def reload_trips_if_changed(self) -> None:
        version = self._read_trips_version()
        if version != self._trips_version:
            trips = self.trips.list()
            with self._lock:
                self.engine.set_trips(trips)
                self._trips_version = version
            log.info("reloaded %d trips", len(trips))

    def _read_trips_version(self) -> tuple[int, float]:
        row = self.db.conn().execute("SELECT count(*), coalesce(max(updated_at), 0) FROM trips").fetchone()
        return int(row[0]), float(row[1])

    # ---- snapshots ----------------------------------------------------------------------------------

    def save_snapshot_slice(self) -> None:
        """Save the next slice of the rolling snapshot."""
        with self._lock:
            k = self._next_shard
            if k == 0:
                self._round = self.engine.tracker_ids()
                self._round_upto = self.readings.max_id()
            state = self.engine.snapshot(self._round[k :: self.shards])
            upto = self.readings.max_id()
            self._next_shard = (k + 1) % self.shards
            index = self.engine.replay_index() if k == 0 else None  # once a round: it changes slowly
        self._write([(k, upto, self._round_upto, state)], None if index is None else index.encode())
        self._last_snapshot = time.monotonic()

    def save_snapshot(self) -> None:
        """Save every tracker's state at once (on shutdown), as one complete round."""
        with self._lock:
            tids = self.engine.tracker_ids()
            upto = self.readings.max_id()
            rows = [(k, upto, upto, self.engine.snapshot(tids[k :: self.shards])) for k in range(self.shards)]
            self._next_shard = 0
            index = self.engine.replay_index()
        self._write(rows, None if index is None else index.encode())
        self._last_snapshot = time.monotonic()

    def _write(self, rows: list[tuple[int, int, int, bytes]], index: bytes | None = None) -> None:
        now = time.time()
        with self.db.write() as c:
            if index is not None:  # the replay index (issue 17), with the round's first slice
                c.execute(
                    "INSERT INTO replay_index (id, state, saved_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE"
                    " SET state = excluded.state, saved_at = excluded.saved_at",
                    (index, now),
                )
            for shard, upto, round_upto, state in rows:
                c.execute(
                    "INSERT INTO detector_snapshots (shard, reading_id, round_reading_id, state, saved_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (shard) DO UPDATE SET reading_id = excluded.reading_id,"
                    " round_reading_id = excluded.round_reading_id, state = excluded.state,"
                    " saved_at = excluded.saved_at",
                    (shard, upto, round_upto, state, now),
                )
            # Slices beyond the current count (the count was lowered) would hold stale states.
            c.execute("DELETE FROM detector_snapshots WHERE shard >= ?", (self.shards,))

    def restore(self) -> int:
        """Load the snapshot slices, then replay stored readings newer than each. Returns readings replayed."""
        with gc_paused():
            return self._restore()

    def _restore(self) -> int:
        rows = (
            self.db.conn()
            .execute("SELECT reading_id, round_reading_id, state FROM detector_snapshots ORDER BY shard")
            .fetchall()
        )
        newest: dict[str, tuple[int, TrackerState]] = {}
        start = 0
        try:
            for row in rows:
                upto = int(row["reading_id"])
                for st in decode_states(bytes(row["state"])):
                    held = newest.get(st.tid)
                    if held is None or held[0] < upto:
                        newest[st.tid] = (upto, st)
            if rows:
                start = min(int(r["round_reading_id"]) for r in rows)
        except Exception:
            log.exception("detector snapshot unreadable; rebuilding state from the stored track")
            newest, start = {}, 0
        index = self.db.conn().execute("SELECT state FROM replay_index WHERE id = 1").fetchone()
        with self._lock:
            self.engine.restore_states([st for _, st in newest.values()])
            if index is not None:
                try:
                    self.engine.restore_replay_index(bytes(index["state"]))
                except ValueError:
                    log.exception("replay index unreadable; it refills from live fixes")
        skip = {tid: upto for tid, (upto, _) in newest.items()}
        replayed = 0
        after = start
        while True:
            batch = self.readings.after_id(after, REPLAY_BATCH)
            if not batch:
                break
            todo = [r for rid, r in batch if rid > skip.get(r.tracker_id, -1)]
            with self._lock:
                self.engine.process(todo)
            after = batch[-1][0]
            replayed += len(todo)
        return replayed
