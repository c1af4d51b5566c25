"""Readings a tracker never delivered, counted from `seq` (CONTRACT 1.1: +1 per reading).

Per tracker, a run of sequence numbers: its lowest and highest seq and how many of its readings were stored.
Missing = (highest - lowest + 1) - stored, so order does not matter: a reading that arrives late (a batch
flushed after an outage, reordering within a batch) fills its gap when it comes. Duplicates never reach this
(only readings new to the store are counted). A reboot resets seq: a reading with a lower seq but a later
event time than the whole run starts a new run, and the old run's missing count is kept. A late reading from
a run before a reboot (earlier time, higher seq than the current run) is not attributed to any run.

The state lives in memory (the ingest worker is its only user) and is saved every SAVE_INTERVAL_S and at stop
with the id of the last reading it includes; at start the readings stored after that id are replayed, as
detection does with its snapshots. The count per tracker is shown as `seq_missing` on crates, and the total
as `kawal_seq_missing_readings`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from devices.reading import Reading
from ingest.readings import ReadingStore
from kawal.gcpause import gc_paused
from kawal.metrics import Metrics
from storage import Database

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 5.0
REPLAY_BATCH = 20000


class _Run:
    __slots__ = ("closed", "hi", "lo", "max_ts", "min_ts", "received")

    def __init__(self, seq: int, ts: float, closed: int = 0) -> None:
        self.lo = self.hi = seq
        self.received = 1
        self.min_ts = self.max_ts = ts
        self.closed = closed

    @property
    def missing(self) -> int:
        # Two stored readings with one seq (a device resending with a new ts) must not make it negative.
        return self.closed + max(0, self.hi - self.lo + 1 - self.received)


class SeqGaps:
    def __init__(self, db: Database, readings: ReadingStore, metrics: Metrics) -> None:
        self.db = db
        self.readings = readings
        self.metrics = metrics
        self._runs: dict[str, _Run] = {}
        self._dirty: set[str] = set()
        self._total = 0
        self._upto = 0  # the last reading id included
        self._last_save = time.monotonic()

    def missing(self, tracker_id: str) -> int | None:
        run = self._runs.get(tracker_id)
        return None if run is None else run.missing

    def observe(self, readings: Sequence[Reading]) -> None:
        """Count new readings (never duplicates: pass only what the store took as new)."""
        self._observe([(0, r.tracker_id, r.ts, r.seq) for r in readings if r.seq is not None])

    def _observe(self, rows: Iterable[tuple[int, str, float, int]]) -> None:
        """Count (any, tracker_id, ts, seq) of new readings that carry a seq (the stored rows' shape)."""
        runs = self._runs
        for _, tid, ts, seq in rows:
            run = runs.get(tid)
            if run is None:
                runs[tid] = _Run(seq, ts)
                self._dirty.add(tid)
                continue
            if seq == run.hi + 1 and ts >= run.max_ts:  # the usual case: the next one, no gap either way
                run.hi = seq
                run.received += 1
                run.max_ts = ts
                self._dirty.add(tid)
                continue
            before = run.missing
            if seq < run.hi and ts > run.max_ts:  # seq went back while time went on: a reboot
                runs[tid] = run = _Run(seq, ts, closed=before)
            elif ts < run.min_ts and seq > run.hi:  # from a run before a reboot: not attributable
                continue
            else:
                run.lo = min(run.lo, seq)
                run.hi = max(run.hi, seq)
                run.received += 1
                run.min_ts = min(run.min_ts, ts)
                run.max_ts = max(run.max_ts, ts)
            self._total += run.missing - before
            self._dirty.add(tid)
        self.metrics.seq_missing.set(self._total)

    # -- persistence ---------------------------------------------------------------------------------------

    def restore(self) -> int:
        """Load the saved state, then count the readings stored after it. Returns how many were counted
        (those with a seq)."""
        conn = self.db.conn()
        mark = conn.execute("SELECT reading_id FROM seq_gaps_mark WHERE id = 1").fetchone()
        self._upto = int(mark[0]) if mark is not None else 0
        for row in conn.execute("SELECT tracker_id, lo, hi, received, min_ts, max_ts, closed FROM seq_gaps"):
            run = _Run(int(row[1]), float(row[4]), int(row[6]))
            run.hi, run.received, run.max_ts = int(row[2]), int(row[3]), float(row[5])
            self._runs[str(row[0])] = run
        self._total = sum(r.missing for r in self._runs.values())
        replayed = 0
        # Only the columns counted, as plain rows: a restart may replay millions of readings.
        with gc_paused():
            while batch := self.readings.seq_keys_after(self._upto, REPLAY_BATCH):
                self._observe(batch)
                self._upto = batch[-1][0]
                replayed += len(batch)
        self.metrics.seq_missing.set(self._total)
        return replayed

    def save_if_due(self) -> None:
        if time.monotonic() - self._last_save >= SAVE_INTERVAL_S:
            self.save()

    def save(self) -> None:
        """Write the changed trackers' state and counts, with the last reading id they include. Runs on the
        ingest worker between batches, so that id is exactly what was observed."""
        self._last_save = time.monotonic()
        upto = self.readings.max_id()
        dirty, self._dirty = self._dirty, set()
        rows = [(t, r.lo, r.hi, r.received, r.min_ts, r.max_ts, r.closed) for t in dirty if (r := self._runs.get(t))]
        try:
            self._write(rows, upto)
        except BaseException:
            self._dirty |= dirty  # saved with the next attempt
            raise
        self._upto = upto

    def _write(self, rows: list[tuple[str, int, int, int, float, float, int]], upto: int) -> None:
        with self.db.write() as c:
            if rows:
                c.executemany(
                    "INSERT INTO seq_gaps (tracker_id, lo, hi, received, min_ts, max_ts, closed)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tracker_id) DO UPDATE SET lo = excluded.lo,"
                    " hi = excluded.hi, received = excluded.received, min_ts = excluded.min_ts,"
                    " max_ts = excluded.max_ts, closed = excluded.closed",
                    rows,
                )
                c.executemany(
                    "UPDATE trackers SET seq_missing = ? WHERE tracker_id = ?",
                    [(self._runs[t].missing, t) for t, *_ in rows],
                )
            c.execute(
                "INSERT INTO seq_gaps_mark (id, reading_id) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET reading_id = excluded.reading_id",
                (upto,),
            )
