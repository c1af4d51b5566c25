"""One crate's plan: its storage rests and trips, with the incident assigned to each trip driven out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulators.benign import BenignEvents
from simulators.device_incidents import DeviceIncidents
from simulators.model import StopZone, TrackerSpec, TripSpec, next_wib
from simulators.motion import Control, Drive, Motion, Rest
from simulators.paths import DrivenPath
from simulators.places import Place
from simulators.road_incidents import RoadIncidents


class TripPlanner(RoadIncidents, DeviceIncidents, BenignEvents):
    """Plans the timeline of one crate at a time."""

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
        pb = DrivenPath()
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
