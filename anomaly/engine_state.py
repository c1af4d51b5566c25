"""The detection engine's tracker states: lookups, snapshots and restore (a base class of DetectionEngine)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from anomaly.config import DetectionConfig
from anomaly.phase import Phase, TripPlan, bound_plan, phase_at
from anomaly.replay import ReplayCapture
from anomaly.spoofing import SpoofingDetector
from anomaly.state import TrackerState, decode_states, encode_states
from anomaly.timers import Timers


class EngineStates(ABC):
    """What DetectionEngine (anomaly/engine.py) keeps per tracker, and how it is saved and restored."""

    cfg: DetectionConfig
    _states: dict[str, TrackerState]
    _by_tracker: dict[str, list[TripPlan]]
    _spoof: SpoofingDetector | None
    _timers: Timers

    @abstractmethod
    def _reschedule(self, st: TrackerState) -> None:
        """Queue the tracker's next deadline (DetectionEngine does)."""

    def tracker_state(self, tracker_id: str) -> TrackerState | None:
        return self._states.get(tracker_id)

    def phase_of(self, tracker_id: str, at: float) -> Phase:
        """The phase a tracker is in at `at`, as the detectors see it."""
        st = self._states.get(tracker_id)
        plan = bound_plan(self._by_tracker.get(tracker_id), at)
        if st is None or plan is None:
            return Phase.NONE if plan is None else (Phase.BEFORE if at < plan.depart_after else Phase.TRANSIT)
        return phase_at(st, plan, at)

    @property
    def trackers(self) -> int:
        return len(self._states)

    def tracker_ids(self) -> list[str]:
        return list(self._states)

    def snapshot(self, tracker_ids: Sequence[str] | None = None) -> bytes:
        """The trackers' states (every tracker's by default; see anomaly.state.encode_states); trips are
        not included."""
        if tracker_ids is None:
            return encode_states(self._states.values())
        states = self._states
        return encode_states([states[t] for t in tracker_ids if t in states])

    def replay_index(self) -> ReplayCapture | None:
        """A copy of the spoofing detector's replay index (anomaly.replay) to encode outside the engine's
        lock, or None when there is none yet."""
        idx = None if self._spoof is None else self._spoof.index
        return None if idx is None else idx.capture()

    def restore_replay_index(self, data: bytes) -> None:
        """Raises ValueError on a dump it cannot read."""
        if self._spoof is not None:
            self._spoof.index_for(self.cfg).load(data)

    def restore(self, data: bytes) -> None:
        """Replace every tracker state with the snapshot's. Raises ValueError on a snapshot it cannot read."""
        self.restore_states(decode_states(data))

    def restore_states(self, restored: Sequence[TrackerState]) -> None:
        """Replace every tracker state with these."""
        states = {st.tid: st for st in restored}
        self._states = states
        self._timers = Timers()
        for tid in self._by_tracker:
            if tid not in states:
                states[tid] = TrackerState(tid)
        for st in states.values():
            self._reschedule(st)
