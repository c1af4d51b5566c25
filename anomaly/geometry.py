"""Plane geometry in local metres, and the per-trip route index.

A trip spans tens of kilometres, so a local equirectangular projection around its first route point
(kawal.geodesy.LocalFrame, the one geodesy of Kawal) is exact to well under 0.1 %. Routes are stored once as
float32 metres in `array` buffers: Python reads single points from them cheaply (the hinted search), and
numpy views the same memory without a copy (the full search).
"""

from __future__ import annotations

import math
from array import array

import numpy as np
import numpy.typing as npt

from kawal.geodesy import LocalFrame

FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]


class Circle:
    """A zone (origin, destination, allowed stop) in a frame."""

    __slots__ = ("lat", "lon", "name", "r", "x", "y")

    def __init__(self, frame: LocalFrame, lat: float, lon: float, radius_m: float, name: str) -> None:
        self.lat = lat
        self.lon = lon
        self.r = radius_m
        self.name = name
        self.x, self.y = frame.to_xy(lat, lon)

    def dist(self, x: float, y: float) -> float:
        """Distance from the zone's centre."""
        dx = x - self.x
        dy = y - self.y
        return math.sqrt(dx * dx + dy * dy)


def seg_dist2(ax: float, ay: float, bx: float, by: float, x: float, y: float) -> float:
    """Squared distance from (x, y) to the segment a-b."""
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    px = x - ax
    py = y - ay
    if l2 > 0.0:
        t = (px * dx + py * dy) / l2
        if t > 1.0:
            px = x - bx
            py = y - by
        elif t > 0.0:
            px -= t * dx
            py -= t * dy
    return px * px + py * py


class RouteIndex:
    """The planned polyline of one trip, ready for cross-track distance queries.

    Three ways to answer "how far is this fix from the route", all exact:
    - `within(x, y, thr, hint)`: any segment within `thr`, trying the segments around `hint` first. A fix
      on a followed route is almost always within the corridor of the segment it last matched, so this is a
      handful of float operations in plain Python.
    - `nearest_np(x, y)`: the nearest segment by a vectorised search over the whole route.
    - `nearest_py(x, y)`: the same as a plain loop (the pre-vectorisation baseline, for the benchmark).
    """

    __slots__ = ("frame", "n", "xs", "ys")

    def __init__(self, frame: LocalFrame, points: list[tuple[float, float]] | list[list[float]]) -> None:
        if len(points) < 2:
            raise ValueError("a route needs at least 2 points")
        self.frame = frame
        xs = array("f")
        ys = array("f")
        for lat, lon in points:
            x, y = frame.to_xy(float(lat), float(lon))
            xs.append(x)
            ys.append(y)
        self.xs = xs
        self.ys = ys
        self.n = len(xs) - 1  # number of segments

    @property
    def nbytes(self) -> int:
        return self.xs.itemsize * (len(self.xs) + len(self.ys))

    def seg_dist(self, i: int, x: float, y: float) -> float:
        xs = self.xs
        ys = self.ys
        return math.sqrt(seg_dist2(xs[i], ys[i], xs[i + 1], ys[i + 1], x, y))

    def within(self, x: float, y: float, thr: float, hint: int, window: int) -> int:
        """Index of a segment near `hint` within `thr` of (x, y), or -1 if none in the window."""
        xs = self.xs
        ys = self.ys
        n = self.n
        thr2 = thr * thr
        if hint >= n:
            hint = n - 1
        elif hint < 0:
            hint = 0
        # Forward first: a crate on its route moves ahead of its last match.
        lo = hint - window
        if lo < 0:
            lo = 0
        hi = hint + window + 1
        if hi > n:
            hi = n
        for i in range(hint, hi):
            d2 = seg_dist2(xs[i], ys[i], xs[i + 1], ys[i + 1], x, y)
            if d2 <= thr2:
                # Move on towards the nearest segment ahead, so the hint keeps up with the crate: on a route
                # of short segments the first one within the corridor lies far behind. Strides double while
                # they land closer and halve when they overshoot, so a crate k segments on costs about
                # 2 log2(k) distance checks, not k. Any segment within the corridor is a correct answer;
                # the stride only decides how soon one near the crate is found.
                step = 1
                while step:
                    j = i + step
                    if j < n:
                        nd2 = seg_dist2(xs[j], ys[j], xs[j + 1], ys[j + 1], x, y)
                        if nd2 <= d2:
                            i = j
                            d2 = nd2
                            step *= 2
                            continue
                    step //= 2
                return i
        for i in range(hint - 1, lo - 1, -1):
            if seg_dist2(xs[i], ys[i], xs[i + 1], ys[i + 1], x, y) <= thr2:
                return i
        return -1

    def _arrays(self) -> tuple[F32Array, F32Array, F32Array, F32Array]:
        # float32 views of the stored buffers (no copy); Python floats combine with them as float32
        px = np.frombuffer(self.xs, dtype=np.float32)
        py = np.frombuffer(self.ys, dtype=np.float32)
        ax = px[:-1]
        ay = py[:-1]
        return ax, ay, px[1:] - ax, py[1:] - ay

    def nearest_np(self, x: float, y: float) -> tuple[float, int]:
        """(distance, segment) of the nearest segment, vectorised over the whole route."""
        ax, ay, dx, dy = self._arrays()
        rx = x - ax
        ry = y - ay
        l2 = dx * dx + dy * dy
        np.maximum(l2, 1e-6, out=l2)
        t = rx * dx
        t += ry * dy
        t /= l2
        np.clip(t, 0.0, 1.0, out=t)
        rx -= t * dx
        ry -= t * dy
        rx *= rx
        ry *= ry
        rx += ry
        i = int(rx.argmin())
        return math.sqrt(float(rx[i])), i

    def nearest_py(self, x: float, y: float) -> tuple[float, int]:
        """(distance, segment) of the nearest segment, as a plain loop."""
        xs = self.xs
        ys = self.ys
        best = math.inf
        bi = 0
        for i in range(self.n):
            d2 = seg_dist2(xs[i], ys[i], xs[i + 1], ys[i + 1], x, y)
            if d2 < best:
                best = d2
                bi = i
        return math.sqrt(best), bi

    def min_dist_many(self, qx: FloatArray, qy: FloatArray) -> FloatArray:
        """Distance from each query point to the route: one (points x segments) vectorised pass."""
        ax, ay, dx, dy = (a.astype(np.float64) for a in self._arrays())
        l2 = np.maximum(dx * dx + dy * dy, 1e-6)
        rx = qx[:, None] - ax[None, :]
        ry = qy[:, None] - ay[None, :]
        t = np.clip((rx * dx + ry * dy) / l2, 0.0, 1.0)
        ex = rx - t * dx
        ey = ry - t * dy
        result: FloatArray = np.sqrt((ex * ex + ey * ey).min(axis=1))
        return result

    def crosses(self, x0: float, y0: float, x1: float, y1: float, thr: float, step: float) -> bool:
        """Does the straight line between two fixes pass within `thr` of the route?"""
        length = math.hypot(x1 - x0, y1 - y0)
        k = min(64, max(2, int(length / max(step, 1.0)) + 1))
        t = np.linspace(0.0, 1.0, k + 1)[1:-1]
        if t.size == 0:
            return False
        d = self.min_dist_many(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        return bool((d <= thr).any())
