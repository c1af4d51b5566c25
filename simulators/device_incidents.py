"""Incidents in storage and of the tracker itself: a crate carried out of its warehouse, silences,
GPS jumps, a draining battery and seal events."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from simulators.model import Silence, TrackerSpec, TripSpec, wib_iso
from simulators.motion import Drive, Motion, Rest
from simulators.paths import DrivenPath, inside_zone
from simulators.places import Place
from simulators.plan_base import PlanBase


class DeviceIncidents(PlanBase):
    """Storage moves and sensor incidents, planned around a crate's drives."""

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
        pb = DrivenPath()
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
        pb2 = DrivenPath()
        pb2.add_route(back)
        pb2.add(self._yard(spot, place)[::-1], "lane")
        d2, _, _ = self.drive(pb2, d1.t1 + dwell, rng)
        tl.add(d2)
        moves.append((t_go, d2.t1))
        ss, inside = inside_zone(d1.motion.path, place)
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
        # The count opens the box at the last outbound leg's destination (the TPS); return legs come after.
        last = next((t for t in reversed(spec.trips) if t.open_after is not None), spec.trips[-1])
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
            way_back = next((r for r in spec.trips if r.direction == "return"), None)
            if way_back is not None:  # resealed after counting, with new numbers, before the way back
                reseal = min(t + rng.uniform(7200.0, 14400.0), way_back.depart_after - 900)
                spec.seal_events.append((float(int(reseal)), "closed"))
        spec.seal_events.sort()
