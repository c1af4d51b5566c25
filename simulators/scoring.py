"""Scoring an evaluation: match alerts against the ground truth (see simulators/evaluate.py)."""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kawal.timeutil import parse_time
from simulators.scenario import INCIDENT_TYPES, TruthEvent, utc_iso


class SimClock:
    """Wall time -> the simulated time being published then (samples taken while publishing)."""

    def __init__(self, every: int = 25) -> None:
        self.every = every
        self.wall: list[float] = []
        self.sim: list[float] = []
        self._n = 0

    def on_publish(self, msg: Any, wall: float) -> None:
        self._n += 1
        if self._n % self.every == 1 or self.every == 1:
            self.wall.append(wall)
            self.sim.append(msg.at)

    def sim_at(self, wall: float) -> float | None:
        """An upper bound of the simulated time reached at `wall` (the end, once publishing is over)."""
        if not self.wall:
            return None
        i = bisect.bisect_right(self.wall, wall)
        return self.sim[min(i, len(self.sim) - 1)]


@dataclass
class TypeScore:
    type: str
    incidents: int = 0
    detected: int = 0
    alerts: int = 0  # alerts of this type, consequences excluded
    matched_alerts: int = 0  # alerts that match an incident (duplicates included)
    duplicates: int = 0
    false_alerts: int = 0
    consequences: int = 0

    @property
    def precision(self) -> float | None:
        return self.matched_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)


@dataclass
class Evaluation:
    scores: dict[str, TypeScore]
    delays: dict[str, list[float]]  # type -> alert ts - incident start, seconds
    seal_latency: list[float]  # seconds, raised_at - publish wall time
    false_alerts: list[dict[str, Any]]  # alert + "context"
    missed: list[TruthEvent]
    trips: int
    clean_trips: int
    false_on_clean: int
    alerts_total: int
    meta: dict[str, Any] = field(default_factory=dict)
    # type -> simulated time the feed had reached when the alert was raised, minus incident start (seconds)
    time_to_alert: dict[str, list[float]] = field(default_factory=dict)

    @property
    def false_per_100_clean(self) -> float:
        return 100.0 * self.false_on_clean / self.clean_trips if self.clean_trips else 0.0

    def recall(self, type_: str) -> float | None:
        return self.scores[type_].recall

    def summary(self) -> dict[str, Any]:
        return {
            "per_type": {
                t: {
                    "incidents": s.incidents,
                    "detected": s.detected,
                    "alerts": s.alerts,
                    "false": s.false_alerts,
                    "duplicates": s.duplicates,
                    "consequences": s.consequences,
                    "precision": s.precision,
                    "recall": s.recall,
                    "f1": s.f1,
                }
                for t, s in self.scores.items()
            },
            "trips": self.trips,
            "clean_trips": self.clean_trips,
            "false_on_clean": self.false_on_clean,
            "false_per_100_clean_trips": round(self.false_per_100_clean, 2),
            "alerts": self.alerts_total,
            "missed": [m.to_json() for m in self.missed],
            "false_alerts": self.false_alerts,
            "delay_s": {t: describe(v) for t, v in self.delays.items() if v},
            "seal_latency_s": describe(self.seal_latency),
            "time_to_alert_s": {t: describe(v) for t, v in self.time_to_alert.items() if v},
            "meta": self.meta,
        }


def describe(xs: Sequence[float]) -> dict[str, float] | None:
    if not xs:
        return None
    s = sorted(xs)
    return {
        "n": len(s),
        "min": round(s[0], 3),
        "p50": round(statistics.median(s), 3),
        "p95": round(s[min(len(s) - 1, int(0.95 * len(s)))], 3),
        "max": round(s[-1], 3),
    }


def score(
    alerts: Sequence[dict[str, Any]],
    truth: Sequence[TruthEvent],
    trips: int,
    clean_trip_ids: set[str],
    first_publish: dict[str, float] | None = None,
    sim_clock: SimClock | None = None,
) -> Evaluation:
    """Match alerts against the ground truth (see the module docstring).

    sim_clock maps wall time to the simulated time being published then; with it, each detected
    incident also gets its time to alert in simulated time.
    """
    first_publish = first_publish or {}
    time_to_alert: dict[str, list[float]] = {}
    incidents = [e for e in truth if e.expect_alert]
    benign = [e for e in truth if not e.expect_alert]
    with_incident = {e.tracker_id for e in incidents}
    scores = {t: TypeScore(t) for t in INCIDENT_TYPES}
    for e in incidents:
        scores.setdefault(e.type, TypeScore(e.type)).incidents += 1
    detected: dict[str, dict[str, Any]] = {}
    delays: dict[str, list[float]] = {t: [] for t in scores}
    seal_latency: list[float] = []
    false_alerts: list[dict[str, Any]] = []
    false_on_clean = 0
    by_tracker: dict[str, list[TruthEvent]] = {}
    for e in incidents:
        by_tracker.setdefault(e.tracker_id, []).append(e)
    for a in sorted(alerts, key=lambda a: (parse_time(a["ts"]), a["id"])):
        type_ = str(a["type"])
        sc = scores.setdefault(type_, TypeScore(type_))
        ts = parse_time(a["ts"])
        mine = by_tracker.get(a["tracker_id"], [])
        hits = [e for e in mine if e.type == type_ and e.window[0] <= ts <= e.window[1]]
        if hits:
            e = min(hits, key=lambda e: abs(ts - e.start))
            sc.alerts += 1
            sc.matched_alerts += 1
            if e.id in detected:
                sc.duplicates += 1
                continue
            detected[e.id] = a
            sc.detected += 1
            delays[type_].append(ts - e.start)
            if sim_clock is not None:
                at = sim_clock.sim_at(parse_time(a["raised_at"]))
                if at is not None:
                    time_to_alert.setdefault(type_, []).append(at - e.start)
            if type_ == "seal_break" and e.id in first_publish:
                seal_latency.append(parse_time(a["raised_at"]) - first_publish[e.id])
            continue
        if any(type_ in e.also and e.also_window and e.also_window[0] <= ts <= e.also_window[1] for e in mine):
            sc.consequences += 1
            continue
        sc.alerts += 1
        sc.false_alerts += 1
        near = [b for b in benign if b.tracker_id == a["tracker_id"] and b.start - 900 <= ts <= b.end + 900]
        context = {
            "clean_trip": (a.get("trip_id") in clean_trip_ids)
            or (a.get("trip_id") is None and a["tracker_id"] not in with_incident),
            "near_benign": [{"type": b.type, "start": utc_iso(b.start), "id": b.id} for b in near],
            "tracker_incidents": [{"type": e.type, "trip_id": e.trip_id, "start": utc_iso(e.start)} for e in mine],
        }
        if context["clean_trip"]:
            false_on_clean += 1
        false_alerts.append({**a, "context": context})
    missed = [e for e in incidents if e.id not in detected]
    ev = Evaluation(
        scores,
        delays,
        seal_latency,
        false_alerts,
        missed,
        trips,
        len(clean_trip_ids),
        false_on_clean,
        len(alerts),
    )
    ev.time_to_alert = time_to_alert
    return ev


def quality_failures(ev: Evaluation, min_recall: float = 0.9) -> list[str]:
    """The minimum bar: every seal break found, no false alert on a clean trip, other recall >= min."""
    out: list[str] = []
    for t, s in ev.scores.items():
        r = s.recall
        if r is None:
            continue
        need = 1.0 if t == "seal_break" else min_recall
        if r < need:
            missed = [e.id for e in ev.missed if e.type == t]
            out.append(f"{t}: recall {r:.2f} < {need:.2f} (missed {', '.join(missed)})")
    if ev.false_on_clean:
        kinds = sorted({a["type"] for a in ev.false_alerts if a["context"]["clean_trip"]})
        out.append(f"{ev.false_on_clean} false alert(s) on clean trips ({', '.join(kinds)})")
    return out
