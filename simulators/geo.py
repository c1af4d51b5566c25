"""Plane geometry for the simulator: polylines in a local metric frame over the regency.

Over a regency (about 40 km across, 7.5° south) the equirectangular frame of kawal.geodesy (the one geodesy
the detector and the API use too) is accurate to well under 0.1 %, far below GPS noise, so all geometry runs
in metres (x east, y north).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def point_segment_distances(points: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    """Distance of each point (N, 2) to the nearest of the segments a[i]-b[i] (M, 2): shape (N,)."""
    d = b - a  # (M, 2)
    len2 = np.einsum("ij,ij->i", d, d)
    len2 = np.where(len2 == 0.0, 1e-12, len2)
    rel = points[:, None, :] - a[None, :, :]  # (N, M, 2)
    t = np.clip(np.einsum("nmk,mk->nm", rel, d) / len2, 0.0, 1.0)
    proj = a[None, :, :] + t[..., None] * d[None, :, :]
    dist = np.hypot(points[:, None, 0] - proj[..., 0], points[:, None, 1] - proj[..., 1])
    return np.asarray(dist.min(axis=1), dtype=np.float64)


class Polyline:
    """A path in the local frame, parameterised by distance along it (s, metres)."""

    __slots__ = ("cum", "length", "xy")

    def __init__(self, xy: FloatArray | list[tuple[float, float]]) -> None:
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if len(pts) >= 2:
            # Drop repeated vertices: they make zero-length segments with no heading.
            keep = np.ones(len(pts), dtype=bool)
            keep[1:] = np.hypot(*(pts[1:] - pts[:-1]).T) > 1e-6
            pts = pts[keep]
        if len(pts) < 2:
            pts = np.vstack([pts[:1], pts[:1] + np.array([[0.01, 0.0]])])
        self.xy: FloatArray = pts
        seg = np.hypot(*(pts[1:] - pts[:-1]).T)
        self.cum: FloatArray = np.concatenate([[0.0], np.cumsum(seg)])
        self.length = float(self.cum[-1])

    def __len__(self) -> int:
        return len(self.xy)

    def point_at(self, s: float) -> tuple[float, float]:
        s = min(max(s, 0.0), self.length)
        i = int(np.searchsorted(self.cum, s, side="right")) - 1
        i = min(max(i, 0), len(self.cum) - 2)
        seg = self.cum[i + 1] - self.cum[i]
        f = 0.0 if seg <= 0 else (s - self.cum[i]) / seg
        p, q = self.xy[i], self.xy[i + 1]
        return float(p[0] + f * (q[0] - p[0])), float(p[1] + f * (q[1] - p[1]))

    def points_at(self, s: FloatArray) -> FloatArray:
        s = np.clip(s, 0.0, self.length)
        x = np.interp(s, self.cum, self.xy[:, 0])
        y = np.interp(s, self.cum, self.xy[:, 1])
        return np.column_stack([x, y])

    def heading_at(self, s: float) -> float:
        """Compass heading (degrees clockwise from north) of the segment under s."""
        s = min(max(s, 0.0), self.length)
        i = int(np.searchsorted(self.cum, s, side="right")) - 1
        i = min(max(i, 0), len(self.cum) - 2)
        dx, dy = self.xy[i + 1] - self.xy[i]
        return math.degrees(math.atan2(dx, dy)) % 360.0

    def slice(self, s0: float, s1: float) -> FloatArray:
        """Vertices of the part between s0 and s1 (inclusive end points)."""
        s0, s1 = max(0.0, s0), min(self.length, s1)
        inner = self.xy[(self.cum > s0) & (self.cum < s1)]
        return np.vstack([np.array([self.point_at(s0)]), inner, np.array([self.point_at(s1)])])

    def distance_to(self, points: FloatArray, chunk: int = 256) -> FloatArray:
        """Cross-track distance of each point (N, 2) to this polyline."""
        a, b = self.xy[:-1], self.xy[1:]
        out = np.empty(len(points))
        for i in range(0, len(points), chunk):
            out[i : i + chunk] = point_segment_distances(points[i : i + chunk], a, b)
        return out

    def resample(self, rng: np.random.Generator, lo: float = 50.0, hi: float = 150.0) -> FloatArray:
        """Vertices every lo..hi metres along the line (always keeping both ends)."""
        marks = [0.0]
        while self.length - marks[-1] > hi:
            marks.append(marks[-1] + float(rng.uniform(lo, hi)))
        if self.length - marks[-1] < lo and len(marks) > 1:
            # Fold the short tail into the interval before it: one interval if that fits, else two halves.
            prev = marks[-2]
            marks.pop()
            if self.length - prev > hi:
                marks.append((prev + self.length) / 2)
        marks.append(self.length)
        return self.points_at(np.asarray(marks))

    def nearest_s(self, x: float, y: float) -> float:
        """Distance along the line of the point nearest to (x, y)."""
        a, b = self.xy[:-1], self.xy[1:]
        d = b - a
        len2 = np.maximum(np.einsum("ij,ij->i", d, d), 1e-12)
        t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / len2, 0.0, 1.0)
        px, py = a[:, 0] + t * d[:, 0], a[:, 1] + t * d[:, 1]
        i = int(np.argmin(np.hypot(px - x, py - y)))
        return float(self.cum[i] + t[i] * math.sqrt(len2[i]))


def concat(parts: list[FloatArray]) -> FloatArray:
    """Join vertex arrays end to start, dropping a repeated joint."""
    out: list[FloatArray] = []
    for p in parts:
        if len(p) == 0:
            continue
        if out and np.allclose(out[-1][-1], p[0]):
            p = p[1:]
        out.append(p)
    return np.vstack(out) if out else np.zeros((0, 2))
