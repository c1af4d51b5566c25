"""Attacks on the trackers, as labelled incidents (issue 17), and a benign tracker reboot.

`plan_attacks(scenario, per_kind)` picks clean trips of native trackers (OwnTracks has no `seq`) and marks
each with one attack; `apply_attack` rewrites the reading a tracker sends while it lasts:

- `jamming` (fix_lost): a GPS jammer in the cab during a detour: the tracker goes on reporting every
  interval, without a fix, for 20-26 minutes (the detour itself is invisible: there is no fix to see it).
- `replay` (spoofing_suspected): an insider publishes another crate's trip of the day before, time-shifted,
  with this tracker's id and seq: positions copied exactly, 20 minutes of them.
- `route_spoof` (spoofing_suspected): positions keep following the planned route while the lorry goes
  elsewhere; the receiver's speed and heading (Doppler) are the lorry's, 90-180 degrees off (12 minutes).
- `gps_simulator` (spoofing_suspected): a GPS simulator replaces the sky with a track along the road with
  no noise (the true positions, rounded to 1e-6 degree; 15 minutes of a later leg, including at least 6
  minutes in which the lorry waits: that is where a receiver's own fixes wander and the simulator's repeat).
- `tracker_reboot` (benign): the tracker restarts: `seq` counts again from 1, a minute without a fix.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from typing import Any

from simulators.model import Scenario, TrackerSpec, TripSpec, TruthEvent
from simulators.motion import Drive

ATTACK_TYPES: tuple[str, ...] = ("jamming", "replay", "route_spoof", "gps_simulator")
ATTACK_ALERT = {"jamming": "fix_lost", "replay": "spoofing_suspected", "route_spoof": "spoofing_suspected"}
ATTACK_ALERT["gps_simulator"] = "spoofing_suspected"
# What an attack legitimately causes besides its own alert: replayed positions are elsewhere and jump there.
ATTACK_ALSO: dict[str, tuple[str, ...]] = {
    "jamming": (),
    "replay": ("route_deviation", "gps_jump", "unscheduled_stop", "wrong_destination", "overdue"),
    "route_spoof": (),
    "gps_simulator": (),
}
DURATION_S = {"jamming": (20 * 60.0, 24 * 60.0), "replay": (20 * 60.0, 20 * 60.0), "gps_simulator": (15 * 60, 15 * 60)}


def _drive_of(spec: TrackerSpec, trip: TripSpec) -> Drive | None:
    return next((s for s in spec.timeline.segments if isinstance(s, Drive) and s.t0 >= trip.departure - 1), None)


def _moving_share(drive: Drive, t0: float, length: float) -> float:
    ks = range(0, int(length), 30)
    return sum(drive.motion.state(t0 + k)[1] > 3.0 for k in ks) / max(1, len(ks))


def _moving_start(
    drive: Drive, lo: float, hi: float, length: float, rng: random.Random, resting: bool = False
) -> float:
    """Of a few candidate windows, the one in which the lorry moves the most (not parked at a stop), or with
    `resting` the one in which it waits the longest (a traffic jam, an allowed stop)."""
    starts = [float(int(lo + rng.uniform(0, max(0.0, hi - lo)))) for _ in range(12)]
    sign = -1.0 if resting else 1.0
    return max(starts, key=lambda a: sign * _moving_share(drive, a, length))


def _plan_one(
    spec: TrackerSpec, kind: str, rng: random.Random, sources: list[TrackerSpec]
) -> tuple[TripSpec, dict[str, Any]] | None:
    """The attack window on this tracker, or None when its drives do not fit the attack."""
    # A replay and a GPS simulator come on a later leg: the day before gave a recording / the receiver's noise.
    trip = spec.trips[-1] if kind in ("replay", "gps_simulator") else spec.trips[0]
    if kind in ("replay", "gps_simulator") and len(spec.trips) < 2:
        return None
    drive = _drive_of(spec, trip)
    lo, hi = DURATION_S.get(kind, (12 * 60.0, 12 * 60.0))
    need = (hi if kind in ("jamming", "gps_simulator") else 10 * 60.0) + 300
    if drive is None or drive.t1 - drive.t0 < need:
        return None
    length = min(rng.uniform(lo, hi), drive.t1 - drive.t0 - 240)
    # A GPS simulator shows best while the lorry waits (a receiver's own fixes wander then; the simulator's
    # repeat); the others while it drives.
    resting = kind == "gps_simulator"
    t0 = _moving_start(drive, drive.t0 + 120, drive.t1 - 120 - length, length, rng, resting)
    share = _moving_share(drive, t0, length)
    if (resting and share > 0.6) or (kind in ("jamming", "route_spoof") and share < 0.7):
        return None
    attack: dict[str, Any] = {"kind": kind, "t0": t0, "t1": t0 + length}
    if kind == "replay":
        for cand in sources:  # another crate's trip of the day before, long enough to copy
            d = _drive_of(cand, cand.trips[0])
            day_before = cand.trips[0].departure < trip.departure - 6 * 3600
            fits = d is not None and d.t1 - d.t0 >= length + 300
            if cand is not spec and not cand.attacks and day_before and fits and d is not None:
                start = _moving_start(d, d.t0 + 60, d.t1 - length - 60, length, rng)
                if _moving_share(d, start, length) >= 0.8:  # a drive worth copying, not a parked lorry
                    attack["source"] = cand.index
                    attack["source_t0"] = start
                    break
        else:
            return None
    return trip, attack


def plan_attacks(sc: Scenario, per_kind: int) -> None:
    """Give `per_kind` clean trips each attack and a reboot; adds the ground truth. Deterministic per seed."""
    if per_kind <= 0:
        return
    rng = random.Random(sc.seed * 7919 + 17)
    native = [s for s in sc.trackers if s.protocol == "native" and all(t.incident is None for t in s.trips)]
    rng.shuffle(native)
    kinds = [k for k in (*ATTACK_TYPES, "tracker_reboot") for _ in range(per_kind)]
    seq_no = len(sc.truth)
    sources: set[int] = set()
    for kind in kinds:
        planned = None
        for spec in native:
            if not spec.attacks and spec.index not in sources:
                planned = _plan_one(spec, kind, rng, native)
                if planned is not None:
                    break
        if planned is None:
            sc.skipped[kind] = sc.skipped.get(kind, 0) + 1
            continue
        trip, attack = planned
        if "source" in attack:
            sources.add(attack["source"])  # the recording must stay clean: no attack on the source
        t0, t1 = attack["t0"], attack["t1"]
        spec.attacks.append(attack)
        if kind != "tracker_reboot":
            trip.incident = kind
        seq_no += 1
        expect = kind != "tracker_reboot"
        also = ATTACK_ALSO.get(kind, ())
        sc.truth.append(
            TruthEvent(
                id=f"{'A' if expect else 'B'}{seq_no:06d}",
                type=ATTACK_ALERT[kind] if expect else kind,
                tracker_id=spec.tracker_id,
                trip_id=trip.trip_id,
                crate_id=spec.crate_id,
                start=t0,
                end=t1,
                window=(t0 - spec.interval_s - 1, t1 + (0.0 if kind == "jamming" else 3600.0)) if expect else (t0, t1),
                expect_alert=expect,
                also=also,
                also_window=(t0 - 600.0, t1 + 4 * 3600.0) if also else None,
                details={"attack": kind, "minutes": round((t1 - t0) / 60, 1)},
            )
        )
    sc.truth.sort(key=lambda e: (e.start, e.id))


class AttackState:
    """Per tracker stream: the source readings of a replay and the seq offset after a reboot."""

    def __init__(self, sc: Scenario, spec: TrackerSpec) -> None:
        self.spec = spec
        self.source: list[dict[str, Any]] = []
        self.source_ts: list[float] = []
        self.shift = 0.0
        self.seq_base: int | None = None
        for a in spec.attacks:
            if a["kind"] == "replay":
                from simulators.streams import recorded_readings

                src = sc.trackers[a["source"]]
                t0 = a["source_t0"]
                self.source = [r for r in recorded_readings(sc, src) if t0 - 30 <= r["ts"] and "lat" in r]
                self.source_ts = [float(r["ts"]) for r in self.source]
                self.shift = a["t0"] - t0

    def apply(self, t: float, r: dict[str, Any], true_lat: float, true_lon: float) -> None:
        for a in self.spec.attacks:
            kind = a["kind"]
            if kind == "tracker_reboot" and t >= a["t0"]:
                if self.seq_base is None:
                    self.seq_base = int(r["seq"]) - 1
                r["seq"] = int(r["seq"]) - self.seq_base
                if t < a["t0"] + 60:
                    _no_fix(r)
                continue
            if not a["t0"] <= t < a["t1"]:
                continue
            if kind == "jamming":
                _no_fix(r)
            elif kind == "replay" and "lat" in r:
                # the recording played back at its own pace: the source reading nearest to the same offset
                want = t - self.shift
                i = bisect_left(self.source_ts, want)
                near = [j for j in (i - 1, i) if 0 <= j < len(self.source) and abs(self.source_ts[j] - want) <= 15]
                if not near:
                    _no_fix(r)  # nothing recorded then: the replay has a gap
                    continue
                src = self.source[min(near, key=lambda j: abs(self.source_ts[j] - want))]
                for key in ("lat", "lon", "acc", "spd", "hdg"):
                    if key in src:
                        r[key] = src[key]
            elif kind == "route_spoof" and "hdg" in r:
                rng = random.Random(int(t) * 31 + self.spec.index)
                off = rng.uniform(90.0, 180.0) * (1 if rng.random() < 0.5 else -1)
                r["hdg"] = round((float(r["hdg"]) + off) % 360.0, 1)
                r["spd"] = round(max(float(r["spd"]), 25.0 + rng.uniform(0, 15)), 1)
            elif kind == "gps_simulator" and "lat" in r:
                r["lat"], r["lon"] = round(true_lat, 6), round(true_lon, 6)


def _no_fix(r: dict[str, Any]) -> None:
    for key in ("lat", "lon", "acc", "spd", "hdg"):
        r.pop(key, None)


def attack_summary(sc: Scenario) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in sc.trackers:
        for a in s.attacks:
            out[a["kind"]] = out.get(a["kind"], 0) + 1
    return out
