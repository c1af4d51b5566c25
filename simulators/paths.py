"""A driven path under construction, and geometry the planner asks of a path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from simulators.geo import FloatArray, Polyline, concat
from simulators.motion import Control
from simulators.places import Place
from simulators.roads import Route


@dataclass(slots=True)
class DrivenPath:
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


def inside_zone(path: Polyline, place: Place, step: float = 5.0) -> tuple[FloatArray, np.ndarray]:
    """Distances along a path every `step` metres, and whether each point is inside the place's zone."""
    ss = np.append(np.arange(0.0, path.length, step), path.length)
    pts = path.points_at(ss)
    return ss, np.hypot(pts[:, 0] - place.x, pts[:, 1] - place.y) < place.radius_m


def turn_speed(path: Polyline, s: float) -> float:
    """Speed for the bend at s (m/s): sharp turns at 15 km/h, mild ones at 25, straight on at cruise."""
    h1 = path.heading_at(max(0.0, s - 25.0))
    h2 = path.heading_at(min(path.length, s + 25.0))
    turn = abs((h2 - h1 + 180.0) % 360.0 - 180.0)
    if turn > 60:
        return 15 / 3.6
    if turn > 30:
        return 25 / 3.6
    return 99.0
