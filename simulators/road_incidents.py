"""Incidents on the road: a detour off the planned route, a stop in a house yard, the wrong PPK."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulators.geo import Polyline
from simulators.model import TrackerSpec, TripSpec
from simulators.motion import Control, Motion, Rest
from simulators.paths import DrivenPath, inside_zone
from simulators.plan_base import PlanBase
from simulators.roads import Route


class RoadIncidents(PlanBase):
    """Drives that leave the plan: route deviation, unscheduled stop, wrong destination."""

    def _add_detour(self, pb: DrivenPath, route: Route, trip: TripSpec, rng: np.random.Generator) -> dict[str, Any]:
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

    def _add_house(self, pb: DrivenPath, route: Route, trip: TripSpec, rng: np.random.Generator) -> Control:
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
            room = min(
                [self.zone_clearance(hx, hy) - 300.0, *(math.hypot(hx - z.x, hy - z.y) - 500.0 for z in trip.stops)]
            )
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
        ss, inside = inside_zone(d1.motion.path, wrong)
        outside = np.nonzero(~inside)[0]
        t_in = d1.motion.time_at(float(ss[outside[-1] + 1])) if len(outside) else d1.t0
        ss2, inside2 = inside_zone(d2.motion.path, wrong)
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
