"""A simulated distribution: crates, their trips, what really happens to them, and the ground truth.

`build_scenario(seed, trackers, incidents_rate, start, config)` plans everything up front and
deterministically for its arguments:

- each crate (one tracker each) travels regency warehouse -> its PPK (leg 1), waits overnight in the PPK
  warehouse, goes PPK -> its village PPS the next morning (leg 2) and, with `legs=3`, PPS -> its TPS on
  voting day (leg 3);
- every trip has a planned route on the synthetic road network (points every 50-150 m), allowed stops
  (police posts, fuel stations), a schedule and, for the last leg, an `open_after` time;
- the true movement: a speed profile with acceleration, slow-downs at bends, short traffic stops, some
  allowed stops taken, rests in warehouses;
- incidents, at most one per crate, each of an alert type of CONTRACT 2.3, sized to clearly exceed the
  thresholds, and benign events that must not alarm; both are listed in `Scenario.truth`.

Readings are generated lazily from the plan by `simulators.streams` (see `Scenario.messages()`).
"""

from __future__ import annotations

from datetime import datetime

from simulators.model import (
    ACC_PER_SIGMA,
    BENIGN_TYPES,
    CONSEQUENCES,
    INCIDENT_TYPES,
    WIB,
    Scenario,
    SimConfig,
    StopZone,
    TrackerSpec,
    TripSpec,
    TruthEvent,
    parse_start,
    utc_iso,
    wib_iso,
)

__all__ = [
    "ACC_PER_SIGMA",
    "BENIGN_TYPES",
    "CONSEQUENCES",
    "INCIDENT_TYPES",
    "WIB",
    "Scenario",
    "SimConfig",
    "StopZone",
    "TrackerSpec",
    "TripSpec",
    "TruthEvent",
    "build_scenario",
    "utc_iso",
    "wib_iso",
]


def build_scenario(
    seed: int = 1,
    trackers: int = 100,
    incidents_rate: float = 0.1,
    start: float | datetime | str | None = None,
    config: SimConfig | None = None,
) -> Scenario:
    """Plan a simulated distribution.

    seed: everything (places, roads, schedules, incidents, noise) is a function of it and the other
        arguments; the same arguments give the same trips, truth and messages.
    trackers: crates in the fleet, one tracker each.
    incidents_rate: share of crates (0..1) that suffer one incident; types are apportioned by
        `config.incident_weights` (all nine alert types equally by default).
    start: when the simulation begins (Unix seconds, aware datetime or RFC 3339); crates rest in the
        regency warehouse until the first departures `config.lead_s` later. Default 2024-11-25 05:00 WIB.
    """
    config = config or SimConfig()
    from simulators.planner import Planner

    planner = Planner(seed, trackers, incidents_rate, parse_start(start), config)
    sc = planner.build()
    if config.attacks:
        from simulators.attacks import plan_attacks

        plan_attacks(sc, config.attacks)
    return sc
