"""Benign events that must not alarm: coverage gaps while driving.

Traffic and allowed stops are recorded with every drive (`PlanBase._record_halts`); an authorised
opening with the seal events (`simulators.device_incidents`).
"""

from __future__ import annotations

import math

import numpy as np

from simulators.model import TrackerSpec
from simulators.motion import Drive
from simulators.plan_base import PlanBase


class BenignEvents(PlanBase):
    """Plans dead zones."""

    def _plan_dead_zones(self, spec: TrackerSpec, rng: np.random.Generator) -> None:
        """Coverage gaps while driving, away from incident starts and silences."""
        busy = [
            (e.start - 240, e.start + 240) for e in self.truth if e.tracker_id == spec.tracker_id and e.expect_alert
        ]
        busy += [(s.t0 - 300, s.t1 + 300) for s in spec.silences]
        busy += [(t - 240, t + 240) for t, _ in spec.seal_events]
        for seg in spec.timeline.segments:
            if not isinstance(seg, Drive) or seg.t1 - seg.t0 < 900:
                continue
            trip = next((t for t in spec.trips if t.departure <= seg.t0 <= (t.arrival or math.inf)), None)
            if trip is None:
                continue
            for _ in range(int(rng.poisson(self.cfg.dead_zones_per_trip))):
                length = float(rng.uniform(*self.cfg.dead_zone_s))
                t0 = float(rng.uniform(seg.t0 + 120, max(seg.t0 + 121, seg.t1 - length - 120)))
                t1 = t0 + length
                if any(a < t1 and t0 < b for a, b in busy) or any(
                    a < t1 + 300 and t0 - 300 < b for a, b in spec.dead_zones
                ):
                    continue
                spec.dead_zones.append((t0, t1))
                self.add_truth("dead_zone", spec, trip, t0, t1, (t0, t1), False, {"gap_min": round(length / 60, 1)})
        spec.dead_zones.sort()
