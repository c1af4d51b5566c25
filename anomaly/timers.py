"""When each tracker next needs a time-driven check: buckets of whole seconds plus a heap of bucket keys.

A tracker sits in at most one bucket. Moving it is O(1); `tick` pops only the due buckets, so its cost is
the number of trackers due, not the fleet size. A tracker may be woken earlier than necessary (a reading
moved its deadline later): it is then simply re-evaluated and queued again.
"""

from __future__ import annotations

import heapq
import math

from anomaly.state import TrackerState


class Timers:
    def __init__(self) -> None:
        self._buckets: dict[int, set[str]] = {}
        self._heap: list[int] = []

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def at(self, st: TrackerState, when: float) -> None:
        """Queue the tracker for `when` (rounded up to a whole second)."""
        key = math.ceil(when)
        if key == st.sched:
            return
        self.cancel(st)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            heapq.heappush(self._heap, key)
        bucket.add(st.tid)
        st.sched = key

    def cancel(self, st: TrackerState) -> None:
        if st.sched:
            bucket = self._buckets.get(st.sched)
            if bucket is not None:
                bucket.discard(st.tid)
                if not bucket:
                    del self._buckets[st.sched]
            st.sched = 0

    def pop_due(self, now: float) -> list[str]:
        """Trackers whose time has come, in a stable order; they are no longer queued."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0] <= now:
            bucket = self._buckets.pop(heapq.heappop(heap), None)
            if bucket:
                due.extend(bucket)
        due.sort()
        return due
