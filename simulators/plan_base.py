"""The planner's shared state and tools: RNGs, registered routes, allowed stops, drives, the truth list.

Everything is drawn from seeded generators (per purpose and per tracker), so a seed gives the same plan.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from simulators.geo import FloatArray, Polyline
from simulators.model import CONSEQUENCES, SimConfig, StopZone, TrackerSpec, TripSpec, TruthEvent
from simulators.motion import Control, Drive, Motion
from simulators.paths import DrivenPath, turn_speed
from simulators.places import Place, load_geography
from simulators.roads import CLASS_SPEED_KMH, RoadNetwork


class PlanBase:
    """What every part of the planner shares: seeded generators, caches, drives and the ground truth."""

    # Set by `Planner.assign_incidents`; read when a crate is delivered to the wrong PPK.
    skipped: dict[str, int]
    _ppk_in_use: set[str]

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
            v = turn_speed(path, s)
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
        pb: DrivenPath,
        t0: float,
        rng: np.random.Generator,
        factor: float = 1.0,
        label: str = "",
    ) -> tuple[Drive, list[Control], list[float]]:
        path = pb.polyline()
        ctl, cruise = self.controls(path, pb.marks, pb.halts, rng, factor)
        m = Motion(path, t0, ctl, cruise)
        return Drive(t0, m.t1, m, label), ctl, cruise

    # ----- places and yards -----------------------------------------------------------------------
    def _storage_spot(self, place: Place, rng: np.random.Generator) -> tuple[float, float]:
        r = float(rng.uniform(5.0, min(35.0, place.radius_m * 0.3)))
        a = float(rng.uniform(0, 2 * math.pi))
        return place.x + r * math.cos(a), place.y + r * math.sin(a)

    def _yard(self, spot: tuple[float, float], place: Place) -> FloatArray:
        return np.array([spot, (place.x, place.y)], dtype=float)

    def _zone_to_zone(
        self, spot: tuple[float, float], a: Place, b: Place, dest_spot: tuple[float, float]
    ) -> DrivenPath:
        """A drive from a resting spot in a's zone, by road, to a resting spot in b's zone."""
        pb = DrivenPath()
        pb.add(self._yard(spot, a), "lane")
        pb.add_route(self.net.route(a, b))
        pb.add(self._yard(dest_spot, b)[::-1], "lane")
        return pb
