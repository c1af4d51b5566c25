"""Planning a scenario: the fleet, its schedules and which crate suffers which incident.

The parts: `simulators.plan_base` (shared state, drives, truth), `simulators.trips` (one crate),
`simulators.road_incidents`, `simulators.device_incidents`, `simulators.benign`; `simulators.paths`.
"""

from __future__ import annotations

import math

import numpy as np

from simulators.custody import plan_custody
from simulators.model import INCIDENT_TYPES, Scenario, TrackerSpec, TripSpec, next_wib
from simulators.motion import Timeline
from simulators.places import Place
from simulators.trips import TripPlanner


class Planner(TripPlanner):
    """Plans one scenario. Holds the RNGs and caches; `build()` returns the Scenario."""

    # ----- the plan --------------------------------------------------------------------------------
    def build(self) -> Scenario:
        cfg = self.cfg
        geo = self.geo
        rng = self.rng
        ppk_order = [geo.ppk[int(i)] for i in rng.permutation(len(geo.ppk))]
        village_cursor: dict[str, int] = {}
        tps_cursor: dict[str, int] = {}
        specs: list[TrackerSpec] = []
        chains: list[list[Place]] = []
        for i in range(self.n):
            ppk = ppk_order[i % len(ppk_order)]
            villages = geo.pps[ppk.code]
            vi = village_cursor.get(ppk.code, int(rng.integers(len(villages))))
            village_cursor[ppk.code] = vi + 1
            village = villages[vi % len(villages)]
            stations = geo.tps[village.code]
            ti = tps_cursor.get(village.code, 0)
            tps_cursor[village.code] = ti + 1
            tps = stations[ti % len(stations)]
            chain = [geo.warehouse, ppk, village, tps][: cfg.legs + 1]
            chains.append(chain)
            owntracks = bool(rng.uniform() < cfg.owntracks_share)
            num = f"{i + 1:05d}"
            tracker_id = f"{cfg.prefix.lower()}.trk{num}" if owntracks else f"{cfg.prefix}-TRK{num}"
            crate_id = f"{cfg.prefix}-JBG-{num}"
            lo, hi = cfg.interval_s
            interval = int(rng.integers(lo, hi + 1))
            specs.append(
                TrackerSpec(
                    index=i,
                    tracker_id=tracker_id,
                    crate_id=crate_id,
                    protocol="owntracks" if owntracks else "native",
                    interval_s=interval,
                    phase_s=int(rng.integers(0, interval)),
                    storage_every=max(1, round(cfg.storage_interval_s / interval)),
                    trips=[],
                    timeline=Timeline(),
                    sigma_m=float(rng.uniform(*cfg.gps_sigma_m)),
                    battery0=0.0,
                    drain_per_s=0.0,
                )
            )
        # Schedules: leg 1 staggered by PPK; later legs the next morning(s).
        for i, spec in enumerate(specs):
            chain = chains[i]
            t_prev_arrive_by = 0.0
            for leg in range(1, cfg.legs + 1):
                a, b = chain[leg - 1], chain[leg]
                if leg == 1:
                    slot = ppk_order.index(chain[1]) % 6
                    depart = self.start + cfg.lead_s + slot * 25 * 60 + int(rng.integers(0, 20)) * 60
                else:
                    hour = 7.5 if leg == 2 else 5.0
                    depart = (
                        next_wib(t_prev_arrive_by + 4 * 3600, hour) + int(rng.integers(0, 90 if leg == 2 else 45)) * 60
                    )
                t_prev_arrive_by = self.add_leg(spec, a, b, depart)
        # The last leg's destination may be opened from an hour after the latest planned arrival of that leg.
        last = [s.trips[-1] for s in specs]
        open_after = float(math.ceil((max(t.arrive_by for t in last) + 3600) / 3600) * 3600)
        for t in last:
            t.open_after = open_after
        if cfg.returns:
            for spec, chain in zip(specs, chains, strict=True):
                self.add_returns(spec, chain, open_after)
        self.assign_incidents(specs)
        for spec, chain in zip(specs, chains, strict=True):
            self.plan_tracker(spec, chain)
        handovers = plan_custody(self, specs, cfg.handover_mismatch_share)
        trips = [t for s in specs for t in s.trips]
        last_event = max(
            [t.arrive_by for t in trips]
            + [e.end for e in self.truth if e.end < math.inf]
            + [e.window[1] for e in self.truth if e.expect_alert and e.window[1] < math.inf]
        )
        end = float(math.ceil((last_event + cfg.tail_s) / 60) * 60)
        for e in self.truth:  # open-ended conditions (a low battery stays low) end with the run
            if e.end == math.inf:
                e.end = end
            if e.window[1] == math.inf:
                e.window = (e.window[0], end)
        self.truth.sort(key=lambda e: (e.start, e.id))
        return Scenario(
            self.seed, self.start, end, cfg, geo, self.net, specs, trips, self.truth, self.skipped, handovers
        )

    def add_returns(self, spec: TrackerSpec, chain: list[Place], open_after: float) -> None:
        """The way back after counting (simulators/custody.py): TPS -> PPS the next morning, PPS -> PPK the
        morning after. The chain grows by those places, so the crate's plan drives them like any leg."""
        rng = self._tracker_rng(spec.index, 7)
        back = [chain[2], chain[1]]
        t_prev = open_after + 10 * 3600
        for k, b in enumerate(back):
            a = chain[-1]
            depart = next_wib(t_prev, 7.0 + k) + int(rng.integers(0, 60)) * 60
            arrive_by = self.add_leg(spec, a, b, depart, direction="return")
            chain.append(b)
            t_prev = arrive_by + 4 * 3600

    def add_leg(self, spec: TrackerSpec, a: Place, b: Place, depart: float, direction: str = "outbound") -> float:
        """The crate's next trip, a -> b on its planned route, departing at `depart`; returns its arrive_by:
        the drive at 32 km/h plus 5 min per allowed stop, with half of that (at least 30 min) as slack,
        rounded up to 5 min. (planned_route and allowed_stops draw from their own seeded generators.)"""
        route_ll, route_xy = self.planned_route(a, b)
        route = self.net.route(a, b)
        stops = self.allowed_stops(a, b)
        nominal = route.path.length / (32 / 3.6) + 300 * len(stops)
        arrive_by = depart + math.ceil((nominal + max(1800.0, 0.5 * nominal)) / 300) * 300
        leg = len(spec.trips) + 1
        spec.trips.append(
            TripSpec(
                trip_id=f"{spec.crate_id}-L{leg}",
                tracker_id=spec.tracker_id,
                crate_id=spec.crate_id,
                leg=leg,
                district=b.district,
                origin=a,
                destination=b,
                route=route_ll,
                route_xy=route_xy,
                stops=stops,
                depart_after=float(depart),
                arrive_by=float(arrive_by),
                config=self.cfg,
                direction=direction,
            )
        )
        return arrive_by

    def assign_incidents(self, specs: list[TrackerSpec]) -> None:
        """At most one incident per crate; types apportioned by weight, scarcest eligibility first."""
        cfg = self.cfg
        weights = dict(cfg.incident_weights) if cfg.incident_weights else dict.fromkeys(INCIDENT_TYPES, 1.0)
        types = [t for t in INCIDENT_TYPES if weights.get(t, 0.0) > 0]
        n_inc = round(self.rate * len(specs))
        self.skipped: dict[str, int] = {}
        self._ppk_in_use: set[str] = set()
        if not types or n_inc == 0:
            return
        w = np.array([weights[t] for t in types], dtype=float)
        raw = w / w.sum() * n_inc
        counts = np.floor(raw).astype(int)
        # Remainders go to types in a seeded order, so small fleets still see a spread of types.
        order = self.rng.permutation(len(types))
        rem = raw - counts
        for i in sorted(order, key=lambda i: -rem[i])[: n_inc - int(counts.sum())]:
            counts[i] += 1
        free = list(range(len(specs)))
        self.rng.shuffle(free)
        used_ppk = {s.trips[0].destination.code for s in specs}
        self._ppk_in_use = used_ppk
        for type_, count in zip(types, counts, strict=True):
            for _ in range(int(count)):
                picked = None
                for idx in free:
                    spec = specs[idx]
                    trips = [t for t in spec.trips if self.eligible(type_, spec, t, used_ppk)]
                    if trips:
                        picked = (idx, trips[int(self.rng.integers(len(trips)))])
                        break
                if picked is None:
                    self.skipped[type_] = self.skipped.get(type_, 0) + 1
                    continue
                free.remove(picked[0])
                picked[1].incident = type_

    def eligible(self, type_: str, spec: TrackerSpec, trip: TripSpec, used_ppk: set[str]) -> bool:
        if trip.direction == "return":
            return False  # the way back carries custody incidents only (simulators/custody.py)
        length = self.net.route(trip.origin, trip.destination).path.length
        if type_ == "seal_break":
            return spec.protocol == "native"
        if type_ == "route_deviation":
            return trip.leg <= 2 and length >= 3000
        if type_ == "unscheduled_stop":
            return length >= 1500
        if type_ == "signal_lost":
            return length >= 2000
        if type_ == "unexpected_movement":
            # Before departure needs room in the morning (lead_s); otherwise at night before leg 2.
            return trip.leg == 1 and (len(spec.trips) > 1 or trip.depart_after - self.start >= 6000)
        if type_ == "wrong_destination":
            return trip.leg == 1 and len(used_ppk - {trip.destination.code}) > 0
        if type_ == "overdue":
            return bool(trip.stops)
        if type_ == "gps_jump":
            return length >= 1000
        return True  # low_battery
