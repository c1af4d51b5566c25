"""What `kawal demo` plays: a simulated Jombang day arranged so that Kawal's point shows in two minutes.

The first crates on the road get the incidents a first-time viewer must see at once: a seal break (the
critical alert, red flash and sound), a route deviation (drawn against its planned route) and a crate that
goes silent (signal_lost). Every other crate keeps to its plan and arrives, so clean arrivals go on all the
while. The rest of the fleet's incidents are spread over the day as in `kawal simulate`.

Handovers (officers signing for arriving crates) are played through `scheduled_handovers`.
"""

from __future__ import annotations

from datetime import datetime

from simulators.custody import HandoverSpec, with_early_mismatch
from simulators.model import Scenario, SimConfig, TrackerSpec, parse_start
from simulators.planner import Planner

# The incidents the demo shows within its first two minutes at the default speed-up, in that order.
SHOWCASE = ("seal_break", "route_deviation", "signal_lost")
# How many of the earliest departures may carry them: the first departures are staggered by PPK.
EARLY_CRATES = 12


class DemoPlanner(Planner):
    """The simulator's planner, with SHOWCASE incidents moved onto the earliest departures."""

    def assign_incidents(self, specs: list[TrackerSpec]) -> None:
        super().assign_incidents(specs)
        early = sorted(specs, key=lambda s: (s.trips[0].depart_after, s.index))[:EARLY_CRATES]
        for type_ in SHOWCASE:
            if any(t.incident == type_ for s in early for t in s.trips[:1]):
                continue
            for spec in early:
                first = spec.trips[0]
                # One incident per crate: a crate that already has one keeps it.
                if any(t.incident for t in spec.trips) or not self.eligible(type_, spec, first, self._ppk_in_use):
                    continue
                first.incident = type_
                break


def build_demo_scenario(seed: int, trackers: int, incidents_rate: float, start: datetime, legs: int) -> Scenario:
    return DemoPlanner(seed, trackers, incidents_rate, parse_start(start), SimConfig(legs=legs)).build()


def scheduled_handovers(scenario: Scenario) -> list[HandoverSpec]:
    """The handovers the demo posts while it plays, as the simulated clock passes them: every arriving
    crate is signed for (simulators/custody.py), and one of the first officers reads a wrong seal number."""
    return with_early_mismatch(scenario.handovers)
