"""Planning a scenario: schedules, true movement, incidents and benign events, crate by crate.

Everything is drawn from seeded generators (per purpose and per tracker), so a seed gives the same plan.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from simulators.geo import FloatArray, Polyline, concat
from simulators.model import (
    CONSEQUENCES,
    INCIDENT_TYPES,
    Scenario,
    Silence,
    SimConfig,
    StopZone,
    TrackerSpec,
    TripSpec,
    TruthEvent,
    next_wib,
    wib_iso,
)
from simulators.motion import Control, Drive, Motion, Rest, Timeline
from simulators.places import Place, load_geography
from simulators.roads import CLASS_SPEED_KMH, RoadNetwork, Route


# ----- path building ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Path:
    """A driven path under construction: vertices plus (s, road class) marks at junctions."""

    parts: list[FloatArray] = field(default_factory=list)
    marks: list[tuple[float, str, bool]] = field(default_factory=list)  # (s, road class from here, junction)
    halts: list[Control] = field(default_factory=list)
    length: float = 0.0

    def add(self, xy: FloatArray, road: str, junctions: Sequence[tuple[float, str]] = ()) -> float:
        """Append vertices; junctions are (s within xy, road class from there). Returns the start s."""
        s0 = self.length
        self.parts.append(xy)
        self.marks.append((s0, road, False))
        self.marks.extend((s0 + s, r, True) for s, r in junctions)
        self.length += float(np.sum(np.hypot(*(xy[1:] - xy[:-1]).T))) if len(xy) > 1 else 0.0
        return s0

    def add_route(self, route: Route, s0: float = 0.0, s1: float | None = None) -> float:
        s1 = route.path.length if s1 is None else s1
        xy = route.path.slice(s0, s1)
        road0 = route.roads[max(0, min(len(route.roads) - 1, int(np.searchsorted(route.node_s, s0, "right")) - 1))]
        js = [(s - s0, route.roads[i]) for i, s in enumerate(route.node_s[:-1]) if s0 < s < s1]
        return self.add(xy, road0, js)

    def polyline(self) -> Polyline:
        return Polyline(concat(self.parts))


def _inside(path: Polyline, place: Place, step: float = 5.0) -> tuple[FloatArray, np.ndarray]:
    """Distances along a path every `step` metres, and whether each point is inside the place's zone."""
    ss = np.append(np.arange(0.0, path.length, step), path.length)
    pts = path.points_at(ss)
    return ss, np.hypot(pts[:, 0] - place.x, pts[:, 1] - place.y) < place.radius_m


def _turn_speed(path: Polyline, s: float) -> float:
    """Speed for the bend at s (m/s): sharp turns at 15 km/h, mild ones at 25, straight on at cruise."""
    h1 = path.heading_at(max(0.0, s - 25.0))
    h2 = path.heading_at(min(path.length, s + 25.0))
    turn = abs((h2 - h1 + 180.0) % 360.0 - 180.0)
    if turn > 60:
        return 15 / 3.6
    if turn > 30:
        return 25 / 3.6
    return 99.0


class Planner:
    """Plans one scenario. Holds the RNGs and caches; `build()` returns the Scenario."""

    def __init__(self, seed: int, trackers: int, incidents_rate: float, start: float, config: SimConfig) -> None:
        config.validate()
        if trackers < 1:
            raise ValueError("trackers must be at least 1")
        if not 0.0 <= incidents_rate <= 1.0:
            raise ValueError("incidents_rate is the share of crates with an incident: 0..1")
        self.seed = seed
        self.n = trackers
        self.rate = incidents_rate
        self.start = start
        self.cfg = config
        self.geo = load_geography(seed)
        self.net = RoadNetwork(self.geo, seed)
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5CE4]))
        self._stops: dict[tuple[str, str], list[StopZone]] = {}
        self._planned: dict[tuple[str, str], tuple[list[tuple[float, float]], FloatArray]] = {}
        places = self.geo.all_places()
        self._zone_xy = np.array([[p.x, p.y] for p in places])
        self._zone_r = np.array([p.radius_m for p in places])
        self.truth: list[TruthEvent] = []
        self._truth_seq = 0

    # ----- helpers ---------------------------------------------------------------------------------
    def _tracker_rng(self, index: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, 0x7AC, index, purpose]))

    def zone_clearance(self, x: float, y: float) -> float:
        """Distance from (x, y) to the edge of the nearest place's zone (negative inside one)."""
        d = np.hypot(self._zone_xy[:, 0] - x, self._zone_xy[:, 1] - y) - self._zone_r
        return float(np.min(d))

    def clear_of_zones(self, x: float, y: float, margin: float) -> bool:
        """True when (x, y) is more than `margin` beyond the edge of every place's zone."""
        return self.zone_clearance(x, y) > margin

    def planned_route(self, a: Place, b: Place) -> tuple[list[tuple[float, float]], FloatArray]:
        """The registered route: the road resampled every 50-150 m (same for every crate on it)."""
        key = (a.code, b.code)
        if key not in self._planned:
            route = self.net.route(a, b)
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x90E, *map(ord, a.code + b.code)]))
            xy = route.path.resample(rng)
            ll = self.geo.frame.array_to_latlon(xy)
            self._planned[key] = ([(round(float(la), 6), round(float(lo), 6)) for la, lo in ll], xy)
        return self._planned[key]

    def allowed_stops(self, a: Place, b: Place) -> list[StopZone]:
        """Police posts and fuel stations beside the road, clear of every office zone."""
        key = (a.code, b.code)
        if key in self._stops:
            return self._stops[key]
        route = self.net.route(a, b)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5709, *map(ord, a.code + b.code)]))
        length = route.path.length
        n = 0 if length < 2000 else (1 if length < 12000 else 2)
        out: list[StopZone] = []
        kinds = ("Pos Polisi", "SPBU", "Koramil", "Pos Ronda")
        for k in range(n):
            for _ in range(60):
                lo, hi = (0.25, 0.75) if n == 1 else ((0.2, 0.45) if k == 0 else (0.55, 0.8))
                s = float(rng.uniform(lo, hi)) * length
                x, y = route.path.point_at(s)
                h = math.radians(route.path.heading_at(s))
                off = float(rng.uniform(10.0, 30.0)) * (1 if rng.uniform() < 0.5 else -1)
                cx, cy = x + off * math.cos(h), y - off * math.sin(h)  # perpendicular to the road
                if self.clear_of_zones(cx, cy, 250.0) and all(math.hypot(cx - o.x, cy - o.y) > 1500 for o in out):
                    lat, lon = self.geo.frame.to_latlon(cx, cy)
                    name = f"{kinds[int(rng.integers(len(kinds)))]} {b.district} {k + 1}"
                    out.append(StopZone(name, cx, cy, lat, lon, 100.0, route.path.nearest_s(cx, cy)))
                    break
        out.sort(key=lambda z: z.s)
        self._stops[key] = out
        return out

    def add_truth(
        self,
        type_: str,
        tracker: TrackerSpec,
        trip: TripSpec | None,
        start: float,
        end: float,
        window: tuple[float, float],
        expect: bool,
        details: dict[str, Any] | None = None,
    ) -> TruthEvent:
        self._truth_seq += 1
        also = CONSEQUENCES.get(type_, ()) if expect else ()
        ev = TruthEvent(
            id=f"{'I' if expect else 'B'}{self._truth_seq:06d}",
            type=type_,
            tracker_id=tracker.tracker_id,
            trip_id=trip.trip_id if trip else None,
            crate_id=tracker.crate_id,
            start=start,
            end=end,
            window=window,
            expect_alert=expect,
            also=also,
            also_window=(start - 600.0, end + 4 * 3600.0) if also else None,
            details=details or {},
        )
        self.truth.append(ev)
        return ev

    # ----- drives ----------------------------------------------------------------------------------
    def controls(
        self,
        path: Polyline,
        marks: list[tuple[float, str, bool]],
        halts: list[Control],
        rng: np.random.Generator,
        factor: float,
    ) -> tuple[list[Control], list[float]]:
        """Control points and cruise speeds for a driven path."""
        cs: dict[int, Control] = {0: Control(0.0, 0.0)}
        for s, _road, junction in marks:
            if not junction or s < 30.0 or s > path.length - 30.0:
                continue
            v = _turn_speed(path, s)
            if rng.uniform() < self.cfg.traffic_stop_rate:
                cs[int(s)] = Control(s, 0.0, float(rng.uniform(15.0, 150.0)), "traffic")
            elif v < 50:
                cs[int(s)] = Control(s, v)
        for h in halts:
            for key in [k for k in cs if abs(k - h.s) < 40.0]:
                del cs[key]
            cs[int(h.s)] = h
        cs[int(path.length) + 1] = Control(path.length, 0.0)
        controls = sorted(cs.values(), key=lambda c: c.s)
        road_at = sorted((s, r) for s, r, _ in marks)
        cruise: list[float] = []
        for a, b in itertools.pairwise(controls):
            mid = (a.s + b.s) / 2
            road = road_at[max(0, int(np.searchsorted([s for s, _ in road_at], mid, "right")) - 1)][1]
            cruise.append(CLASS_SPEED_KMH[road] / 3.6 * factor * float(rng.uniform(0.88, 1.08)))
        return controls, cruise

    def drive(
        self,
        pb: _Path,
        t0: float,
        rng: np.random.Generator,
        factor: float = 1.0,
        label: str = "",
    ) -> tuple[Drive, list[Control], list[float]]:
        path = pb.polyline()
        ctl, cruise = self.controls(path, pb.marks, pb.halts, rng, factor)
        m = Motion(path, t0, ctl, cruise)
        return Drive(t0, m.t1, m, label), ctl, cruise

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
                route_ll, route_xy = self.planned_route(a, b)
                route = self.net.route(a, b)
                stops = self.allowed_stops(a, b)
                if leg == 1:
                    slot = ppk_order.index(chain[1]) % 6
                    depart = self.start + cfg.lead_s + slot * 25 * 60 + int(rng.integers(0, 20)) * 60
                else:
                    hour = 7.5 if leg == 2 else 5.0
                    depart = (
                        next_wib(t_prev_arrive_by + 4 * 3600, hour) + int(rng.integers(0, 90 if leg == 2 else 45)) * 60
                    )
                nominal = route.path.length / (32 / 3.6) + 300 * len(stops)
                slack = max(1800.0, 0.5 * nominal)
                arrive_by = depart + math.ceil((nominal + slack) / 300) * 300
                t_prev_arrive_by = arrive_by
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
                        config=cfg,
                    )
                )
        # The last leg's destination may be opened from an hour after the latest planned arrival of that leg.
        last = [s.trips[-1] for s in specs]
        open_after = float(math.ceil((max(t.arrive_by for t in last) + 3600) / 3600) * 3600)
        for t in last:
            t.open_after = open_after
        self.assign_incidents(specs)
        for spec, chain in zip(specs, chains, strict=True):
            self.plan_tracker(spec, chain)
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
        return Scenario(self.seed, self.start, end, cfg, geo, self.net, specs, trips, self.truth, self.skipped)

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

    # ----- one crate -------------------------------------------------------------------------------
    def plan_tracker(self, spec: TrackerSpec, chain: list[Place]) -> None:
        rng = self._tracker_rng(spec.index, 1)
        tl = spec.timeline
        spot = self._storage_spot(chain[0], rng)
        rest_from = self.start
        storage_moves: list[tuple[float, float]] = []
        for trip in spec.trips:
            # Storage before this trip, possibly with a crate carried out of the warehouse.
            departure = trip.depart_after + float(rng.integers(60, 360))
            # Night storage exists only before a next leg; otherwise the crate is taken before departure.
            pre_departure = trip.depart_after - self.start >= 6000 and (
                len(spec.trips) == 1 or bool(rng.uniform() < 0.5)
            )
            if trip.incident == "unexpected_movement" and pre_departure:
                rest_from = self._storage_excursion(
                    spec,
                    trip,
                    spot,
                    rest_from,
                    trip.origin,
                    rng,
                    storage_moves,
                    window=(rest_from + 1200, trip.depart_after - 3000),
                    when="before departure",
                )
            tl.add(Rest(rest_from, departure, spot[0], spot[1], indoor=True))
            trip.departure = departure
            dest_spot = self._storage_spot(trip.destination, rng)
            rest_from = self._plan_trip(spec, trip, spot, dest_spot, departure, rng)
            trip.arrival = rest_from
            spot = dest_spot
            if trip.incident == "unexpected_movement" and not pre_departure:
                nxt = next((t for t in spec.trips if t.leg == trip.leg + 1), None)
                night0 = next_wib(rest_from + 2 * 3600, 0.5)
                hi = min(night0 + 3 * 3600, (nxt.depart_after if nxt else math.inf) - 3 * 3600)
                rest_from = self._storage_excursion(
                    spec,
                    trip,
                    spot,
                    rest_from,
                    trip.destination,
                    rng,
                    storage_moves,
                    window=(night0, hi),
                    when="at night after arrival",
                )
        tl.add(Rest(rest_from, math.inf, spot[0], spot[1], indoor=True))
        # Awake (reporting every interval): each trip until 10 min after arrival, and storage moves.
        awake = [(t.depart_after, (t.arrival or t.arrive_by) + 600.0) for t in spec.trips]
        awake += [(a, b + 600.0) for a, b in storage_moves]
        awake.sort()
        merged: list[tuple[float, float]] = []
        for a, b in awake:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        spec.awake = merged
        self._plan_battery(spec, rng)
        self._plan_seal(spec, rng)
        self._plan_dead_zones(spec, rng)

    def _storage_spot(self, place: Place, rng: np.random.Generator) -> tuple[float, float]:
        r = float(rng.uniform(5.0, min(35.0, place.radius_m * 0.3)))
        a = float(rng.uniform(0, 2 * math.pi))
        return place.x + r * math.cos(a), place.y + r * math.sin(a)

    def _yard(self, spot: tuple[float, float], place: Place) -> FloatArray:
        return np.array([spot, (place.x, place.y)], dtype=float)

    def _zone_to_zone(
        self, spot: tuple[float, float], a: Place, b: Place, dest_spot: tuple[float, float]
    ) -> _Path:
        """A drive from a resting spot in a's zone, by road, to a resting spot in b's zone."""
        pb = _Path()
        pb.add(self._yard(spot, a), "lane")
        pb.add_route(self.net.route(a, b))
        pb.add(self._yard(dest_spot, b)[::-1], "lane")
        return pb

    def _plan_trip(
        self,
        spec: TrackerSpec,
        trip: TripSpec,
        spot: tuple[float, float],
        dest_spot: tuple[float, float],
        departure: float,
        rng: np.random.Generator,
    ) -> float:
        """Adds the drive(s) of one trip to the timeline; returns when the crate rests at its destination."""
        cfg = self.cfg
        tl = spec.timeline
        a, b = trip.origin, trip.destination
        route = self.net.route(a, b)
        kind = trip.incident
        pb = _Path()
        pb.add(self._yard(spot, a), "lane")
        factor = float(rng.uniform(0.9, 1.05))
        stop_halts: list[tuple[StopZone, Control]] = []
        if kind == "wrong_destination":
            return self._wrong_destination(spec, trip, spot, dest_spot, departure, rng)
        detour_info: dict[str, Any] | None = None
        house: Control | None = None
        if kind == "route_deviation":
            detour_info = self._add_detour(pb, route, trip, rng)
        else:
            base = pb.length
            if kind == "unscheduled_stop":
                house = self._add_house(pb, route, trip, rng)
            else:
                pb.add_route(route)
            for z in trip.stops:
                use = kind == "overdue" or (kind is None and rng.uniform() < cfg.allowed_stop_rate)
                if use and house is None:
                    c = Control(base + z.s, 0.0, float(rng.uniform(180.0, 1500.0)), "allowed_stop")
                    pb.halts.append(c)
                    stop_halts.append((z, c))
                    if kind == "overdue":
                        break
        pb.add(self._yard(dest_spot, b)[::-1], "lane")
        if kind == "overdue":
            factor *= 0.8  # heavy rain: slower driving as well as the shelter
        drive, ctl, cruise = self.drive(pb, departure, rng, factor)
        if kind == "overdue":
            # Shelter long enough to arrive clearly late: 20-45 min after arrive_by.
            late = float(rng.uniform(1200.0, 2700.0))
            halt = stop_halts[0][1]
            halt.dwell += max(0.0, trip.arrive_by + late - drive.t1)
            halt.label = "weather_shelter"
            m = Motion(drive.motion.path, departure, ctl, cruise)
            drive = Drive(departure, m.t1, m)
        tl.add(drive)
        m = drive.motion
        self._record_halts(spec, trip, m)
        arrival = m.t1
        if kind != "overdue" and arrival > trip.arrive_by - 900:
            # Only the weather incident may make a crate late: other trips get a schedule with room to spare.
            trip.arrive_by = float(math.ceil((arrival + 1800) / 300) * 300)
        if kind == "route_deviation" and detour_info is not None:
            self._truth_detour(spec, trip, m, detour_info)
        elif kind == "unscheduled_stop" and house is not None:
            h = next(h for h in m.halts if h.label == "house")
            self.add_truth(
                "unscheduled_stop",
                spec,
                trip,
                h.t0,
                h.t1,
                (h.t0 - 2 * spec.interval_s - 120, h.t1),
                True,
                {"stop_min": round((h.t1 - h.t0) / 60, 1), "max_stop_min": cfg.max_stop / 60},
            )
        elif kind == "overdue":
            h = next(h for h in m.halts if h.label == "weather_shelter")
            self.add_truth(
                "overdue",
                spec,
                trip,
                trip.arrive_by,
                arrival,
                (trip.arrive_by - 60, arrival),
                True,
                {
                    "cause": "weather",
                    "shelter_min": round((h.t1 - h.t0) / 60, 1),
                    "late_min": round((arrival - trip.arrive_by) / 60, 1),
                },
            )
        elif kind == "signal_lost":
            self._plan_silence(spec, trip, m, rng)
        elif kind == "gps_jump":
            self._plan_jump(spec, trip, m, rng)
        return arrival

    def _record_halts(self, spec: TrackerSpec, trip: TripSpec, m: Motion) -> None:
        for h in m.halts:
            if h.label in ("traffic", "allowed_stop"):
                kind = "traffic_stop" if h.label == "traffic" else "allowed_stop"
                self.add_truth(
                    kind,
                    spec,
                    trip,
                    h.t0,
                    h.t1,
                    (h.t0, h.t1),
                    False,
                    {"stop_min": round((h.t1 - h.t0) / 60, 2)},
                )

    # ----- incidents on the road -------------------------------------------------------------------
    def _add_detour(self, pb: _Path, route: Route, trip: TripSpec, rng: np.random.Generator) -> dict[str, Any]:
        """The driver leaves the planned road and takes other roads well away from it, then rejoins."""
        corridor = self.cfg.corridor
        planned = Polyline(trip.route_xy)
        n = len(route.nodes)
        pairs = [
            (i, j)
            for i in range(1, n - 2)
            for j in range(i + 1, n - 1)
            if 2000 <= route.node_s[j] - route.node_s[i] <= 9000
        ]
        rng.shuffle(pairs)
        avoid = self.net.nodes_near(route.path, 650.0)
        for i, j in pairs[:40]:
            nodes = self.net.shortest_nodes(route.nodes[i], route.nodes[j], avoid=avoid)
            if nodes is None:
                continue
            det = self.net.route_nodes(nodes)
            d = planned.distance_to(det.path.xy)
            far = det.path.cum[d > corridor + 300.0]
            if d.max() < 700.0 or len(far) == 0 or far[-1] - far[0] < 2500.0:
                continue
            pb.add_route(route, 0.0, route.node_s[i])
            s_det = pb.add_route(det)
            pb.add_route(route, route.node_s[j], None)
            return {"s0": s_det, "s1": s_det + det.path.length, "max_off_m": round(float(d.max()))}
        # No road detour found: an excursion along field tracks, 1.2-1.8 km off the route.
        length = route.path.length
        for frac in (0.3, 0.45, 0.2, 0.55):
            s_a = frac * length
            s_b = min(length - 150.0, s_a + max(1000.0, 0.35 * length))
            xa, ya = route.path.point_at(s_a)
            xb, yb = route.path.point_at(s_b)
            h = math.atan2(xb - xa, yb - ya)
            for off in (1200.0, 1800.0):
                for side in (1.0, -1.0):
                    nx, ny = side * math.cos(h), -side * math.sin(h)
                    knots = np.array(
                        [
                            [xa, ya],
                            [xa + 0.5 * off * nx, ya + 0.5 * off * ny],
                            [xa + off * nx, ya + off * ny],
                            [xb + off * nx, yb + off * ny],
                            [xb + 0.5 * off * nx, yb + 0.5 * off * ny],
                            [xb, yb],
                        ]
                    )
                    t = np.linspace(0.0, 1.0, 120)
                    u = np.linspace(0.0, 1.0, len(knots))
                    exc = np.column_stack([np.interp(t, u, knots[:, 0]), np.interp(t, u, knots[:, 1])])
                    if planned.distance_to(exc[45:75]).min() > 700.0:
                        pb.add_route(route, 0.0, s_a)
                        s0 = pb.add(exc, "local")
                        pb.add_route(route, s_b, None)
                        return {
                            "s0": s0,
                            "s1": s0 + Polyline(exc).length,
                            "max_off_m": round(off),
                            "geometric": True,
                        }
        raise RuntimeError(f"no detour possible on {trip.trip_id}")

    def _truth_detour(self, spec: TrackerSpec, trip: TripSpec, m: Motion, info: dict[str, Any]) -> None:
        planned = Polyline(trip.route_xy)
        path = m.path
        ss = np.arange(info["s0"], info["s1"], 10.0)
        d = planned.distance_to(path.points_at(ss))
        outside = ss[d > self.cfg.corridor]
        t0, t1 = m.time_at(float(outside[0])), m.time_at(float(outside[-1]))
        self.add_truth(
            "route_deviation",
            spec,
            trip,
            t0,
            t1,
            (t0 - 2 * spec.interval_s, t1),
            True,
            {
                "max_off_route_m": info["max_off_m"],
                "outside_min": round((t1 - t0) / 60, 1),
                "corridor_m": self.cfg.corridor,
            },
        )

    def _add_house(self, pb: _Path, route: Route, trip: TripSpec, rng: np.random.Generator) -> Control:
        """The driver pulls into a house yard beside the road and stays 20-35 minutes."""
        length = route.path.length
        # The yard must be well clear of every zone (else the stop is allowed, or another trip's zone and
        # so a wrong destination). When no candidate is, take the one with the most room, never just the last.
        best: tuple[float, float, float, float, float, float] | None = None
        for _ in range(200):
            s = float(rng.uniform(0.2, 0.8)) * length
            x, y = route.path.point_at(s)
            h = math.radians(route.path.heading_at(s))
            off = float(rng.uniform(25.0, 60.0)) * (1 if rng.uniform() < 0.5 else -1)
            hx, hy = x + off * math.cos(h), y - off * math.sin(h)
            room = min([self.zone_clearance(hx, hy) - 300.0,
                        *(math.hypot(hx - z.x, hy - z.y) - 500.0 for z in trip.stops)])
            if best is None or room > best[0]:
                best = (room, s, x, y, hx, hy)
            if room > 0:
                break
        assert best is not None
        _, s, x, y, hx, hy = best
        off = math.hypot(hx - x, hy - y)
        x2, y2 = route.path.point_at(s + 20.0)
        pb.add_route(route, 0.0, s)
        s_house = pb.add(np.array([[x, y], [hx, hy]]), "lane") + abs(off)
        pb.add(np.array([[hx, hy], [x2, y2]]), "lane")
        pb.add_route(route, s + 20.0, None)
        c = Control(s_house, 0.0, float(rng.uniform(20.0, 35.0)) * 60.0, "house")
        pb.halts.append(c)
        return c

    def _wrong_destination(
        self,
        spec: TrackerSpec,
        trip: TripSpec,
        spot: tuple[float, float],
        dest_spot: tuple[float, float],
        departure: float,
        rng: np.random.Generator,
    ) -> float:
        """Delivered to a neighbouring PPK; noticed after 25-40 minutes and driven on to the right one."""
        tl = spec.timeline
        right = trip.destination
        others = [p for p in self.geo.ppk if p.code != right.code and p.code in self._ppk_in_use]
        wrong = min(others, key=lambda p: math.hypot(p.x - right.x, p.y - right.y))
        park = self._storage_spot(wrong, rng)
        pb = self._zone_to_zone(spot, trip.origin, wrong, park)
        d1, _, _ = self.drive(pb, departure, rng, float(rng.uniform(0.9, 1.05)))
        tl.add(d1)
        self._record_halts(spec, trip, d1.motion)
        stay = float(rng.uniform(25.0, 40.0)) * 60.0
        tl.add(Rest(d1.t1, d1.t1 + stay, park[0], park[1], indoor=False))
        pb2 = self._zone_to_zone(park, wrong, right, dest_spot)
        d2, _, _ = self.drive(pb2, d1.t1 + stay, rng, 1.0)
        tl.add(d2)
        self._record_halts(spec, trip, d2.motion)
        # The crate comes to rest in the wrong zone from its last entry into it, until it drives out again.
        ss, inside = _inside(d1.motion.path, wrong)
        outside = np.nonzero(~inside)[0]
        t_in = d1.motion.time_at(float(ss[outside[-1] + 1])) if len(outside) else d1.t0
        ss2, inside2 = _inside(d2.motion.path, wrong)
        gone = np.nonzero(~inside2)[0]
        t_out = d2.motion.time_at(float(ss2[gone[0]])) if len(gone) else d2.t1
        ev = self.add_truth(
            "wrong_destination",
            spec,
            trip,
            t_in,
            t_out,
            (t_in - 2 * spec.interval_s - 120, t_out),
            True,
            {"delivered_to": wrong.name, "expected": right.name, "rest_min": round(stay / 60, 1)},
        )
        ev.also_window = (trip.depart_after, d2.t1 + 3600.0)
        return d2.t1

    # ----- incidents in storage --------------------------------------------------------------------
    def _storage_excursion(
        self,
        spec: TrackerSpec,
        trip: TripSpec,
        spot: tuple[float, float],
        rest_from: float,
        place: Place,
        rng: np.random.Generator,
        moves: list[tuple[float, float]],
        window: tuple[float, float],
        when: str,
    ) -> float:
        """Someone carries the crate out of the warehouse zone and back. Returns when it rests again."""
        lo, hi = window
        if hi - lo < 1800:
            raise RuntimeError(f"no room for a storage move on {trip.trip_id}")
        t_go = float(int(rng.uniform(lo, hi - 1800)))
        node = self.net.node_of(place)
        pts = np.array(self.net.xy)
        d = np.hypot(pts[:, 0] - place.x, pts[:, 1] - place.y)
        cand = [int(i) for i in np.nonzero((d > 700) & (d < 1600))[0] if int(i) in self.net._junctions]
        target = cand[int(rng.integers(len(cand)))]
        nodes = self.net.shortest_nodes(node, target)
        assert nodes is not None
        out_route = self.net.route_nodes(nodes)
        pb = _Path()
        pb.add(self._yard(spot, place), "lane")
        pb.add_route(out_route)
        tl = spec.timeline
        tl.add(Rest(rest_from, t_go, spot[0], spot[1], indoor=True))
        d1, _, _ = self.drive(pb, t_go, rng)
        tl.add(d1)
        dwell = float(rng.uniform(3.0, 6.0)) * 60.0
        end_xy = out_route.path.point_at(out_route.path.length)
        tl.add(Rest(d1.t1, d1.t1 + dwell, end_xy[0], end_xy[1], indoor=False))
        back = self.net.route_nodes(nodes[::-1])
        pb2 = _Path()
        pb2.add_route(back)
        pb2.add(self._yard(spot, place)[::-1], "lane")
        d2, _, _ = self.drive(pb2, d1.t1 + dwell, rng)
        tl.add(d2)
        moves.append((t_go, d2.t1))
        ss, inside = _inside(d1.motion.path, place)
        t_exit = d1.motion.time_at(float(ss[np.nonzero(~inside)[0][0]]))
        ev = self.add_truth(
            "unexpected_movement",
            spec,
            trip,
            t_go,
            d2.t1,
            (t_go - spec.interval_s, d2.t1 + 60),
            True,
            {
                "from": place.name,
                "when": when,
                "zone_exit_ts": round(t_exit, 1),
                "distance_m": round(math.hypot(end_xy[0] - place.x, end_xy[1] - place.y)),
            },
        )
        ev.also_window = (t_go - 600.0, d2.t1 + 3600.0)
        return d2.t1

    # ----- sensor incidents ------------------------------------------------------------------------
    def _driving_grid_times(self, spec: TrackerSpec, m: Motion, t_lo: float, t_hi: float) -> list[float]:
        out = []
        t = spec.grid_at_or_after(max(t_lo, m.t0), self.start)
        while t <= min(t_hi, m.t1):
            if m.state(t)[1] > 3.0:
                out.append(t)
            t += spec.interval_s
        return out

    def _plan_silence(self, spec: TrackerSpec, trip: TripSpec, m: Motion, rng: np.random.Generator) -> None:
        length = float(rng.uniform(20.0, 26.0)) * 60.0
        latest_on = trip.arrive_by - 20 * 60
        cand = [t for t in self._driving_grid_times(spec, m, m.t0 + 180, m.t1 - 60) if t + length <= latest_on]
        if not cand:
            cand = [spec.grid_at_or_after(m.t0 + 120, self.start)]
        t_off = cand[int(rng.integers(len(cand)))]
        kind: Literal["off", "jammed"] = "jammed" if spec.protocol == "native" and rng.uniform() < 0.5 else "off"
        spec.silences.append(Silence(t_off, t_off + length, kind))
        self.add_truth(
            "signal_lost",
            spec,
            trip,
            t_off,
            t_off + length,
            (t_off - spec.interval_s - 1, t_off + length),
            True,
            {
                "silence_min": round(length / 60, 1),
                "cause": "jammer" if kind == "jammed" else "switched off",
                "max_silence_min": self.cfg.max_silence / 60,
            },
        )

    def _plan_jump(self, spec: TrackerSpec, trip: TripSpec, m: Motion, rng: np.random.Generator) -> None:
        cand = self._driving_grid_times(spec, m, m.t0 + 120, m.t1 - 120) or [
            spec.grid_at_or_after(m.t0 + 60, self.start)
        ]
        t = cand[int(rng.integers(len(cand)))]
        dist = float(rng.uniform(3000.0, 8000.0))
        ang = float(rng.uniform(0, 2 * math.pi))
        spec.jumps[t] = (dist * math.cos(ang), dist * math.sin(ang))
        ev = self.add_truth(
            "gps_jump",
            spec,
            trip,
            t,
            t + spec.interval_s,
            (t - 1, t + 2 * spec.interval_s + 5),
            True,
            {"jump_m": round(dist), "implied_kmh": round(dist / spec.interval_s * 3.6)},
        )
        spec.marks[("jump", t)] = ev.id

    def _plan_battery(self, spec: TrackerSpec, rng: np.random.Generator) -> None:
        trip = next((t for t in spec.trips if t.incident == "low_battery"), None)
        horizon = 4 * 86400.0
        if trip is None:
            spec.battery0 = float(rng.uniform(55.0, 100.0))
            spec.drain_per_s = min(float(rng.uniform(0.3, 1.2)), (spec.battery0 - 30.0) / (horizon / 3600)) / 3600
            return
        drive = next(s for s in spec.timeline.segments if isinstance(s, Drive) and s.t0 >= trip.departure - 1)
        t_cross = float(rng.uniform(drive.t0 + 300, max(drive.t0 + 301, drive.t1 - 120)))
        spec.battery0 = float(rng.uniform(24.0, 32.0))
        spec.drain_per_s = (spec.battery0 - 14.5) / (t_cross - self.start)
        first = spec.grid_at_or_after(t_cross, self.start)
        ev = self.add_truth(
            "low_battery",
            spec,
            trip,
            first,
            math.inf,
            (first - 1, first + 2 * spec.interval_s + 5),
            True,
            {"battery_start": round(spec.battery0, 1), "threshold": 15},
        )
        spec.marks[("battery", first)] = ev.id

    def _plan_seal(self, spec: TrackerSpec, rng: np.random.Generator) -> None:
        if spec.protocol != "native":
            return
        for trip in spec.trips:
            if trip.incident == "seal_break":
                drive = next(s for s in spec.timeline.segments if isinstance(s, Drive) and s.t0 >= trip.departure - 1)
                t = float(int(rng.uniform(drive.t0 + 240, max(drive.t0 + 241, drive.t1 - 240))))
                if (t - self.start - spec.phase_s) % spec.interval_s == 0:
                    t += 1.0  # an event-triggered report, not a scheduled one
                state = "open" if rng.uniform() < 0.6 else "tampered"
                back = t + float(int(rng.uniform(3.0, 12.0) * 60))
                spec.seal_events += [(t, state), (back, "closed")]
                ev = self.add_truth(
                    "seal_break",
                    spec,
                    trip,
                    t,
                    back,
                    (t - 1, t + spec.interval_s),
                    True,
                    {"seal": state, "resealed_after_min": round((back - t) / 60, 1)},
                )
                spec.marks[("seal", t)] = ev.id
        last = spec.trips[-1]
        if last.open_after is not None and last.arrival is not None and rng.uniform() < self.cfg.authorised_open_rate:
            t = float(int(max(last.open_after, last.arrival + 600) + rng.uniform(300.0, 2400.0)))
            if (t - self.start - spec.phase_s) % spec.interval_s == 0:
                t += 1.0
            spec.seal_events.append((t, "open"))
            self.add_truth(
                "authorised_opening",
                spec,
                last,
                t,
                t,
                (t, t),
                False,
                {"open_after": wib_iso(last.open_after), "place": last.destination.name},
            )
        spec.seal_events.sort()

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
