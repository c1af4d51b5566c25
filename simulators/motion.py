"""Vehicle motion along a path: a speed profile with acceleration, and a crate's whole timeline.

A drive is planned from control points along the path (junctions to slow down for, traffic stops, planned
stops). Between control points the vehicle accelerates to its cruise speed, cruises and brakes for the next
one (a trapezoidal profile, made feasible by a forward and a backward pass, as in robot motion planning).
The result is piecewise constant acceleration, so position at any time is exact and cheap (one bisection).

A crate's timeline is a sequence of rests (stored at a warehouse, parked, sheltering) and drives.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from simulators.geo import Polyline

# Typical loaded light-truck figures: gentle acceleration, firmer braking (m/s²).
ACCEL = 0.9
DECEL = 1.3


@dataclass(slots=True)
class Control:
    """A point along the path the profile must respect."""

    s: float
    v: float  # speed at this point, m/s (0 = stop here)
    dwell: float = 0.0  # seconds standing still here
    label: str = ""  # "traffic", "allowed_stop", "house", ... (for the ground truth)


@dataclass(frozen=True, slots=True)
class Halt:
    """A period standing still during a drive."""

    t0: float
    t1: float
    s: float
    label: str


class Motion:
    """Piecewise constant acceleration along `path`, starting at time t0."""

    __slots__ = ("halts", "ka", "ks", "kt", "kv", "path", "t0", "t1")

    def __init__(
        self,
        path: Polyline,
        t0: float,
        controls: list[Control],
        cruise: list[float],
        accel: float = ACCEL,
        decel: float = DECEL,
    ) -> None:
        """controls: sorted by s, first at s=0 and last at the path's end; cruise[i]: top speed between
        controls i and i+1 (m/s)."""
        assert len(cruise) == len(controls) - 1 and len(controls) >= 2
        self.path = path
        self.t0 = t0
        v = [c.v for c in controls]
        v[0] = min(v[0], cruise[0])
        for i in range(len(cruise)):  # forward pass: what can be reached by accelerating
            v[i + 1] = min(
                v[i + 1],
                cruise[i],
                cruise[i + 1] if i + 1 < len(cruise) else math.inf,
                math.sqrt(v[i] ** 2 + 2 * accel * (controls[i + 1].s - controls[i].s)),
            )
        for i in range(len(cruise) - 1, -1, -1):  # backward pass: what can still be braked for
            v[i] = min(v[i], math.sqrt(v[i + 1] ** 2 + 2 * decel * (controls[i + 1].s - controls[i].s)))
        kt: list[float] = []
        ks: list[float] = []
        kv: list[float] = []
        ka: list[float] = []
        halts: list[Halt] = []
        t = t0

        def phase(s: float, v0: float, a: float, dur: float) -> None:
            nonlocal t
            if dur <= 1e-9:
                return
            kt.append(t)
            ks.append(s)
            kv.append(v0)
            ka.append(a)
            t += dur

        for i, c in enumerate(controls):
            if c.dwell > 0:
                halts.append(Halt(t, t + c.dwell, c.s, c.label))
                phase(c.s, 0.0, 0.0, c.dwell)
            if i == len(cruise):
                break
            length = controls[i + 1].s - c.s
            if length <= 0:
                continue
            vi, vj = v[i], v[i + 1]
            peak = math.sqrt((2 * accel * decel * length + decel * vi**2 + accel * vj**2) / (accel + decel))
            top = max(min(cruise[i], peak), vi, vj, 0.1)
            d_acc = (top**2 - vi**2) / (2 * accel)
            d_dec = (top**2 - vj**2) / (2 * decel)
            d_cru = max(0.0, length - d_acc - d_dec)
            phase(c.s, vi, accel, (top - vi) / accel)
            phase(c.s + d_acc, top, 0.0, d_cru / top)
            phase(c.s + d_acc + d_cru, top, -decel, (top - vj) / decel)
        kt.append(t)  # terminal knot: standing at the end
        ks.append(path.length)
        kv.append(0.0)
        ka.append(0.0)
        self.kt, self.ks, self.kv, self.ka = kt, ks, kv, ka
        self.t1 = t
        self.halts = halts

    def state(self, t: float) -> tuple[float, float]:
        """(s, v) at time t."""
        if t >= self.t1:
            return self.path.length, 0.0
        i = max(0, bisect_right(self.kt, t) - 1)
        dt = t - self.kt[i]
        s = self.ks[i] + self.kv[i] * dt + 0.5 * self.ka[i] * dt * dt
        return min(s, self.path.length), max(0.0, self.kv[i] + self.ka[i] * dt)

    def time_at(self, s: float) -> float:
        """The first time the vehicle reaches distance s."""
        if s <= 0:
            return self.t0
        if s >= self.path.length:
            return self.t1
        i = max(0, bisect_left(self.ks, s) - 1)
        while i + 1 < len(self.ks) and self.ks[i + 1] < s:
            i += 1
        ds = s - self.ks[i]
        v, a = self.kv[i], self.ka[i]
        if abs(a) < 1e-12:
            dt = ds / v if v > 0 else 0.0
        else:
            disc = max(0.0, v * v + 2 * a * ds)
            dt = (-v + math.sqrt(disc)) / a
        return self.kt[i] + dt


@dataclass(slots=True)
class Rest:
    t0: float
    t1: float
    x: float
    y: float
    indoor: bool = True  # a stored crate: weaker, noisier fixes


@dataclass(slots=True)
class Drive:
    t0: float
    t1: float
    motion: Motion
    label: str = ""


Segment = Rest | Drive


@dataclass(slots=True)
class TrueState:
    x: float
    y: float
    v: float  # m/s
    heading: float | None  # degrees, None when standing
    indoor: bool


@dataclass(slots=True)
class Timeline:
    """A crate's true whereabouts: rests and drives back to back, covering [start, end]."""

    segments: list[Segment] = field(default_factory=list)
    _starts: list[float] = field(default_factory=list)

    def add(self, seg: Segment) -> None:
        if self.segments:
            prev = self.segments[-1]
            if abs(prev.t1 - seg.t0) > 1e-6:
                raise ValueError(f"timeline gap or overlap at {prev.t1} / {seg.t0}")
        self.segments.append(seg)
        self._starts.append(seg.t0)

    @property
    def end(self) -> float:
        return self.segments[-1].t1

    @property
    def position(self) -> tuple[float, float]:
        """Where the crate is at the end of the timeline so far."""
        seg = self.segments[-1]
        if isinstance(seg, Rest):
            return seg.x, seg.y
        return seg.motion.path.point_at(seg.motion.path.length)

    def segment_at(self, t: float) -> Segment:
        i = max(0, bisect_right(self._starts, t) - 1)
        return self.segments[i]

    def state(self, t: float) -> TrueState:
        seg = self.segment_at(t)
        if isinstance(seg, Rest):
            return TrueState(seg.x, seg.y, 0.0, None, seg.indoor)
        s, v = seg.motion.state(t)
        x, y = seg.motion.path.point_at(s)
        return TrueState(x, y, v, seg.motion.path.heading_at(s) if v > 0.3 else None, False)

    def moving_windows(self) -> list[tuple[float, float]]:
        return [(s.t0, s.t1) for s in self.segments if isinstance(s, Drive)]
