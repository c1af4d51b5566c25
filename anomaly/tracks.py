"""Hand-built trips and tracks around Jombang, for tests, the benchmark and drills.

Positions are generated in metres along a route and converted back to degrees, with optional Gaussian or
Gauss-Markov (first-order autoregressive) noise: the error model of a parked GNSS receiver, whose fix
wanders by tens of metres with a correlation time of about a minute.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts.model import AlertAction, AlertEvent, AlertType
from devices.reading import Reading
from kawal.geodesy import distance_m, offset
from kawal.trips import Trip

# Gudang KPU Jombang -> PPK Diwek (the contract's example trip), about 4.4 km.
GUDANG = (-7.5460, 112.2330)
DIWEK = (-7.5850, 112.2300)
T0 = 1_732_060_800.0  # 2024-11-20T00:00:00Z = 07:00 WIB


def line(start: tuple[float, float], east_m: float, north_m: float, n: int = 21) -> list[tuple[float, float]]:
    """A straight route of n points from `start`, east_m / north_m metres long."""
    return [offset(start[0], start[1], east_m * i / (n - 1), north_m * i / (n - 1)) for i in range(n)]


def make_trip(
    trip_id: str = "T-1",
    tracker_id: str = "TRK-1",
    route: Sequence[tuple[float, float]] = (GUDANG, (-7.5600, 112.2310), DIWEK),
    depart_after: float = T0,
    arrive_by: float = T0 + 3 * 3600,
    crate_id: str | None = None,
    open_after: float | None = None,
    stops: Sequence[dict[str, Any]] = (),
    origin_radius_m: float = 150.0,
    dest_radius_m: float = 150.0,
    updated_at: float | None = None,
    **thresholds: Any,
) -> Trip:
    """A trip whose origin and destination zones sit on the route's first and last points."""
    o, d = route[0], route[-1]
    return Trip.model_validate(
        {
            "trip_id": trip_id,
            "crate_id": crate_id or f"C-{trip_id}",
            "tracker_id": tracker_id,
            "origin": {"name": f"origin {trip_id}", "lat": o[0], "lon": o[1], "radius_m": origin_radius_m},
            "destination": {
                "name": f"destination {trip_id}",
                "lat": d[0],
                "lon": d[1],
                "radius_m": dest_radius_m,
                "open_after": open_after,
            },
            "route": [list(p) for p in route],
            "stops": list(stops),
            "depart_after": depart_after,
            "arrive_by": arrive_by,
            "updated_at": updated_at,
            **thresholds,
        }
    )


def route_length_m(route: Sequence[tuple[float, float]]) -> float:
    return sum(distance_m(*a, *b) for a, b in itertools.pairwise(route))


def point_at(route: Sequence[tuple[float, float]], dist_m: float) -> tuple[float, float]:
    """The point `dist_m` metres along the route (clamped to its ends)."""
    if dist_m <= 0:
        return route[0]
    for a, b in itertools.pairwise(route):
        seg = distance_m(*a, *b)
        if dist_m <= seg and seg > 0:
            t = dist_m / seg
            return a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        dist_m -= seg
    return route[-1]


@dataclass
class Track:
    """Builds one tracker's readings in time order."""

    tracker_id: str = "TRK-1"
    t: float = T0
    seq: int = 0
    readings: list[Reading] = field(default_factory=list)

    def add(self, lat: float | None, lon: float | None, dt: float = 0.0, **kw: Any) -> Reading:
        self.t += dt
        r = Reading(tracker_id=self.tracker_id, ts=self.t, lat=lat, lon=lon, seq=self.seq, **kw)
        self.seq += 1
        self.readings.append(r)
        return r

    def stay(self, at: tuple[float, float], minutes: float, every_s: float = 30.0, **kw: Any) -> Track:
        """Stationary at `at` for `minutes`, one reading every `every_s`."""
        for _ in range(round(minutes * 60 / every_s)):
            self.add(at[0], at[1], every_s, **kw)
        return self

    def drive(
        self,
        route: Sequence[tuple[float, float]],
        speed_kmh: float = 40.0,
        every_s: float = 30.0,
        start_m: float = 0.0,
        end_m: float | None = None,
        **kw: Any,
    ) -> Track:
        """Along `route` from start_m to end_m (default: its end) at a steady speed."""
        end = route_length_m(route) if end_m is None else end_m
        step = speed_kmh / 3.6 * every_s
        d = start_m
        while d < end - 1e-6:
            d = min(d + step, end)
            lat, lon = point_at(route, d)
            self.add(lat, lon, every_s, **kw)
        return self

    def silent(self, minutes: float) -> Track:
        self.t += minutes * 60
        return self

    def __iter__(self) -> Iterator[Reading]:
        return iter(self.readings)


def gauss_markov(n: int, sigma_m: float, tau_s: float, dt_s: float, rng: random.Random) -> list[tuple[float, float]]:
    """(east, north) errors in metres of a first-order Gauss-Markov process with stationary sigma."""
    phi = math.exp(-dt_s / tau_s) if tau_s > 0 else 0.0
    q = sigma_m * math.sqrt(1 - phi * phi)
    e, nn = rng.gauss(0, sigma_m), rng.gauss(0, sigma_m)
    out = []
    for _ in range(n):
        out.append((e, nn))
        e = phi * e + rng.gauss(0, q)
        nn = phi * nn + rng.gauss(0, q)
    return out


def replay(engine: Any, readings: Sequence[Reading], batch: int = 1, tick: bool = True) -> None:
    """Feed readings in batches, ticking at each batch's latest time (what KAWAL_CLOCK=event does)."""
    for i in range(0, len(readings), batch):
        b = list(readings[i : i + batch])
        engine.process(b)
        if tick:
            engine.tick(max(r.ts for r in b))


class Recorder:
    """An alert sink that keeps every event, for tests."""

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    def __call__(self, ev: AlertEvent) -> None:
        self.events.append(ev)

    def of(self, action: AlertAction, atype: AlertType | None = None) -> list[AlertEvent]:
        return [e for e in self.events if e.action == action and (atype is None or e.type == atype)]

    def raised(self, atype: AlertType | None = None) -> list[AlertEvent]:
        return self.of(AlertAction.RAISE, atype)

    def resolved(self, atype: AlertType | None = None) -> list[AlertEvent]:
        return self.of(AlertAction.RESOLVE, atype)

    def types(self, action: AlertAction = AlertAction.RAISE) -> list[str]:
        return [str(e.type) for e in self.events if e.action == action]

    def clear(self) -> None:
        self.events.clear()
