"""Distances and local plane frames on the Earth: the one geodesy of detection, the API and the simulator.

What Kawal measures spans one trip (tens of kilometres) in Indonesia (about 6° N to 11° S). At that scale an
equirectangular projection is exact to well under 0.1 % of the distance (a few metres over 40 km, far below
GPS noise), and it costs a few multiplications, so the detector's hot path and the API use the same
`distance_m` and agree about every crate. `great_circle_m` (haversine) is the reference that
tests/test_geodesy.py holds it to; nothing else should compute distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0  # metres per degree of latitude (and of longitude at the equator)

FloatArray = npt.NDArray[np.float64]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in metres, equirectangular around the mean latitude: the one used everywhere."""
    kx = M_PER_DEG * math.cos(math.radians((lat1 + lat2) * 0.5))
    dx = (lon2 - lon1) * kx
    dy = (lat2 - lat1) * M_PER_DEG
    return math.sqrt(dx * dx + dy * dy)


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in metres on the mean sphere: the reference `distance_m` is tested against."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point `east_m` east and `north_m` north of (lat, lon), in the same projection."""
    return lat + north_m / M_PER_DEG, lon + east_m / (M_PER_DEG * math.cos(math.radians(lat)))


def lon_degrees(metres: float, lat: float) -> float:
    """How many degrees of longitude `metres` span at `lat` (bounded near the poles)."""
    return metres / (M_PER_DEG * max(math.cos(math.radians(lat)), 1e-6))


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """A local tangent plane around (lat0, lon0): metres east (x) and north (y), equirectangular."""

    lat0: float
    lon0: float
    kx: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kx", M_PER_DEG * math.cos(math.radians(self.lat0)))

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * M_PER_DEG

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        return self.lat0 + y / M_PER_DEG, self.lon0 + x / self.kx

    def array_to_latlon(self, xy: FloatArray) -> FloatArray:
        """(N, 2) metres -> (N, 2) [lat, lon]."""
        out = np.empty_like(xy)
        out[:, 0] = self.lat0 + xy[:, 1] / M_PER_DEG
        out[:, 1] = self.lon0 + xy[:, 0] / self.kx
        return out
