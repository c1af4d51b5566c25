"""The alerts must not depend on how the feed is split into batches, nor on where ticks fall.

Under KAWAL_CLOCK=event the ingest worker hands the engine whatever is queued (up to ~2,000 messages) and
ticks after each batch at the newest event time. Fed the same messages, in the same order, the engine must
raise the same alerts whether they come one message at a time with a tick after each, or in any batches.
The property test replays a simulated fleet (jammed and switched-off trackers, dead-zone backlogs, shuffled
and repeated arrays, every incident type) both ways.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.model import AlertType
from anomaly.config import DetectionConfig
from anomaly.engine import DetectionEngine
from anomaly.tracks import DIWEK, GUDANG, T0, Recorder, Track, line, make_trip, point_at
from devices.decode import decode_message
from devices.reading import Reading
from kawal.trips import Trip
from simulators.scenario import Scenario, SimConfig, build_scenario

LOST = AlertType.SIGNAL_LOST


@dataclass(frozen=True)
class Unit:
    """One MQTT message as the engine gets it: its new readings (the store drops repeats) or a status."""

    readings: tuple[Reading, ...]
    status: tuple[str, str, float] | None = None


def _covers(sc: Scenario, weights: dict[str, float]) -> bool:
    kinds = [s.kind for t in sc.trackers for s in t.silences]
    return kinds.count("jammed") >= 2 and "off" in kinds and {e.type for e in sc.incidents} >= set(weights)


@functools.cache
def fleet() -> tuple[Scenario, tuple[Unit, ...], tuple[Trip, ...]]:
    # 14 crates, 11 with one incident each (signal_lost weighted up): the first seed that gives two jammed
    # trackers (their fix-less readings arrive as a backlog after the silence) and a switched-off one,
    # dead-zone backlogs, and every other incident type. Chosen, not fixed: a change of the simulator's
    # draws must not quietly take the cases this test is about out of it.
    weights = dict.fromkeys(
        (
            "unscheduled_stop",
            "overdue",
            "wrong_destination",
            "route_deviation",
            "gps_jump",
            "seal_break",
            "unexpected_movement",
            "low_battery",
        ),
        1.0,
    )
    weights["signal_lost"] = 3.0
    cfg = SimConfig(prefix="PB", legs=1, dead_zones_per_trip=1.5, incident_weights=weights)
    sc = next(
        sc
        for seed in range(1, 40)
        if _covers((sc := build_scenario(seed=seed, trackers=14, incidents_rate=0.8, config=cfg)), weights)
    )
    seen: set[tuple[str, float, int]] = set()
    units: list[Unit] = []
    for m in sc.messages():
        d = decode_message(m.topic, m.payload, sc.end + 86_400)
        fresh = []
        for r in d.readings:
            if r.dedup_key not in seen:
                seen.add(r.dedup_key)
                fresh.append(r)
        status = (d.tracker_id, d.status, m.at) if d.status is not None and d.tracker_id else None
        if fresh or status:
            units.append(Unit(tuple(fresh), status))
    trips = tuple(Trip.model_validate({**body, "trip_id": trip_id}) for trip_id, body in sc.trip_bodies())
    return sc, tuple(units), trips


def feed(batches: Sequence[Sequence[Unit]], ticks: Sequence[bool] | None = None) -> Recorder:
    """Process each batch, then tick at the newest event time seen (KAWAL_CLOCK=event), when asked."""
    _, _, trips = fleet()
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips(list(trips))
    now = float("-inf")
    for i, batch in enumerate(batches):
        readings = [r for u in batch for r in u.readings]
        if readings:
            now = max(now, max(r.ts for r in readings))
            eng.process(readings)
        for u in batch:
            if u.status is not None:
                eng.on_status(*u.status)
        if ticks is None or ticks[i]:
            eng.tick(now)
    eng.tick(now + 2 * 3600)  # the tail: whatever is still going on is raised by now
    assert eng.stats.get("errors", 0) == 0 and "future" not in eng.stats
    return rec


def alerts(rec: Recorder) -> set[tuple[str, str | None, str]]:
    return {(e.tracker_id, e.trip_id, str(e.type)) for e in rec.raised()}


@functools.cache
def reference() -> frozenset[tuple[str, str | None, str]]:
    _, units, _ = fleet()
    return frozenset(alerts(feed([[u] for u in units])))


def test_the_reference_replay_finds_every_incident() -> None:
    sc, units, _ = fleet()
    assert sum(s.kind == "jammed" for t in sc.trackers for s in t.silences) >= 2
    assert any(len(u.readings) > 1 for u in units)  # backlog arrays
    got = {(t, ty) for t, _, ty in reference()}
    expected = {(e.tracker_id, e.type) for e in sc.incidents}
    allowed = expected | {(e.tracker_id, a) for e in sc.incidents for a in e.also}
    assert expected <= got and got <= allowed


@st.composite
def splits(draw: st.DrawFn) -> tuple[list[int], list[bool]]:
    """Where to cut the fleet's messages into batches (none: one batch; up to 80 cuts anywhere), and
    after which batches to tick (all, or some)."""
    n = len(fleet()[1])
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=80))))
    every = draw(st.booleans())
    ticks = (
        [True] * (len(cuts) + 1)
        if every
        else draw(st.lists(st.booleans(), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    )
    return cuts, ticks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(splits())
def test_batch_boundaries_and_ticks_never_change_the_alerts(split: tuple[list[int], list[bool]]) -> None:
    cuts, ticks = split
    units = fleet()[1]
    bounds = [0, *cuts, len(units)]
    got = alerts(feed([units[a:b] for a, b in itertools.pairwise(bounds)], ticks))
    assert got == reference(), f"missing {sorted(reference() - got)}, extra {sorted(got - reference())}"


def test_whole_fleet_in_one_batch_and_in_backlog_sized_batches() -> None:
    _, units, _ = fleet()
    assert alerts(feed([list(units)])) == reference()
    rnd = random.Random(7)
    batches: list[list[Unit]] = []
    i = 0
    while i < len(units):
        size = rnd.randint(1, 2000)
        batches.append(list(units[i : i + size]))
        i += size
    assert alerts(feed(batches)) == reference()


# ---- the cases that first showed it --------------------------------------------------------------------


def test_a_clean_trip_replayed_in_one_batch_after_one_tick_arrives_without_alerts() -> None:
    # Readings hours past the previous tick are not "future" under the event clock.
    sc, units, trips = fleet()
    spec = sc.clean_trips[0]
    readings = [
        r
        for u in units
        for r in u.readings
        if r.tracker_id == spec.tracker_id and spec.depart_after - 600 <= r.ts <= spec.arrive_by + 3600
    ]
    assert readings[-1].ts - readings[0].ts > 3600
    for batch in (len(readings), 60, 1):
        rec = Recorder()
        eng = DetectionEngine(rec)
        eng.set_trips([t for t in trips if t.trip_id == spec.trip_id])
        eng.tick(readings[0].ts - 1)
        for i in range(0, len(readings), batch):
            part = readings[i : i + batch]
            eng.process(part)
            eng.tick(max(r.ts for r in part))
        assert rec.raised() == [], batch
        assert eng.stats["arrivals"] == 1 and "future" not in eng.stats


ROUTE = line(GUDANG, 0, -10_000)


def _two_trackers(jammed: bool, silent_min: float) -> tuple[list[list[Reading]], float]:
    """Messages in arrival order: A reports every 30 s all along (it moves the event clock); B drives,
    goes silent for `silent_min`, then sends its first live reading and, if it was jammed, the fix-less
    readings it kept (one shuffled array)."""
    a = Track(tracker_id="A", t=T0 + 15).stay(GUDANG, 60)
    b = Track(tracker_id="B", t=T0 + 60).drive(ROUTE, 30, 30, end_m=3000)
    quiet_from = b.t
    kept = [b.add(None, None, 30, bat=80) for _ in range(int(silent_min * 2))] if jammed else []
    if not jammed:
        b.silent(silent_min)
    b.drive(ROUTE, 30, 30, start_m=3000, end_m=6000)
    b_live = [r for r in b.readings if r.ts <= quiet_from or r.ts > quiet_from + silent_min * 60]
    first_back = next(r for r in b_live if r.ts > quiet_from)
    shuffled = list(kept)
    random.Random(1).shuffle(shuffled)
    a_live = [r for r in a.readings if r.ts <= b.t]  # both stop together: nobody is silent at the end
    msgs: list[tuple[float, list[Reading]]] = [(r.ts + 0.5, [r]) for r in a_live + b_live]
    if kept:
        msgs.append((first_back.ts + 10, shuffled))  # the backlog comes seconds after the first live one
    msgs.sort(key=lambda m: m[0])
    return [m[1] for m in msgs], quiet_from


def _replay(messages: list[list[Reading]], sizes: Sequence[int], config: DetectionConfig | None = None) -> Recorder:
    rec = Recorder()
    eng = DetectionEngine(rec, config)
    eng.set_trips([make_trip("T-A", "A", route=ROUTE), make_trip("T-B", "B", route=ROUTE)])
    i = 0
    k = 0
    while i < len(messages):
        size = sizes[k % len(sizes)]
        k += 1
        batch = [r for m in messages[i : i + size] for r in m]
        i += size
        eng.process(batch)
        eng.tick(max(r.ts for r in batch))
    return rec


def test_a_jammed_silence_filled_by_its_backlog_is_raised_once_whatever_the_batches() -> None:
    messages, last_before = _two_trackers(jammed=True, silent_min=20)
    for sizes in ([1], [2], [7], [50], [len(messages)], [3, 40, 1, 500]):
        rec = _replay(messages, sizes)
        raised = [e for e in rec.raised(LOST) if e.tracker_id == "B"]
        assert len(raised) == 1, sizes
        assert raised[0].ts == last_before
        assert len([e for e in rec.resolved(LOST) if e.tracker_id == "B"]) == 1
        assert [e for e in rec.raised() if e.tracker_id == "A"] == []


def test_a_switched_off_silence_is_raised_once_whatever_the_batches() -> None:
    messages, _ = _two_trackers(jammed=False, silent_min=20)
    for sizes in ([1], [7], [len(messages)], [3, 40, 1, 500]):
        rec = _replay(messages, sizes)
        assert len([e for e in rec.raised(LOST) if e.tracker_id == "B"]) == 1, sizes


def test_a_dead_zone_backlog_shorter_than_max_silence_raises_nothing_whatever_the_batches() -> None:
    messages, _ = _two_trackers(jammed=True, silent_min=8)
    for sizes in ([1], [7], [len(messages)]):
        assert _replay(messages, sizes).raised() == [], sizes


def test_a_silence_across_a_departure_is_recorded_for_the_trip_it_happened_in() -> None:
    # B drives leg 1, falls silent before arriving, and is next heard on leg 2: leg 1's silence and
    # lateness are raised (and end with the trip) whether ticks fell inside them or not.
    leg1 = make_trip("T-1", "B", route=ROUTE, arrive_by=T0 + 3600)
    leg2 = make_trip("T-2", "B", route=ROUTE[::-1], depart_after=T0 + 6 * 3600, arrive_by=T0 + 9 * 3600)
    tr = Track(tracker_id="B", t=T0 + 60).drive(ROUTE, 30, 30, end_m=3000)
    tr.t = T0 + 6 * 3600 + 60
    tr.drive(ROUTE[::-1], 30, 30, end_m=2000)
    for ticks in ("every minute", "per reading", "none"):
        rec = Recorder()
        eng = DetectionEngine(rec)
        eng.set_trips([leg1, leg2])
        for r in tr.readings:
            if ticks == "every minute" and r.ts > T0 + 3 * 3600:
                for t in range(int(T0 + 3 * 3600), int(r.ts), 60):
                    eng.tick(t)
            eng.process([r])
            if ticks != "none":
                eng.tick(r.ts)
        got = {(e.trip_id, str(e.type)) for e in rec.raised()}
        assert got == {("T-1", "signal_lost"), ("T-1", "overdue")}, ticks
        ended = {(e.trip_id, str(e.type)) for e in rec.resolved()}
        assert ended == got, ticks


# ---- wall clock (production) ---------------------------------------------------------------------------

WALL = DetectionConfig(clock="wall", future_tolerance_s=3600)


def test_wall_clock_backlog_of_hours_is_in_the_past_and_fully_used() -> None:
    # Out of coverage for 3 hours from 10 minutes after departure; it keeps driving, arrives and rests,
    # then sends everything at once. On the wall clock those readings are in the past, not the future.
    trip = make_trip(route=ROUTE, arrive_by=T0 + 5 * 3600)
    tr = Track(t=T0 + 60).drive(ROUTE, 30, 30, end_m=5000)
    live = list(tr.readings)
    tr.drive(ROUTE, 20, 30, start_m=5000).stay(ROUTE[-1], 170)
    backlog = tr.readings[len(live) :]
    rec = Recorder()
    eng = DetectionEngine(rec, WALL)
    eng.set_trips([trip])
    for r in live:
        eng.process([r])
        eng.tick(r.ts + 0.5)
    wall = live[-1].ts
    while wall < backlog[-1].ts + 60:  # ticks every minute while the tracker is out of coverage
        wall += 60
        eng.tick(wall)
    eng.process(backlog)
    eng.tick(wall + 1)
    assert "future" not in eng.stats and "late" not in eng.stats
    assert eng.stats["arrivals"] == 1
    assert rec.types() == ["signal_lost"]  # really silent for hours: the wall clock saw it
    resolved = rec.resolved(LOST)
    assert len(resolved) == 1 and resolved[0].details["reason"] == "signal_resumed"


def test_wall_clock_readings_never_move_the_clock() -> None:
    # A's clock runs 10 minutes ahead. On the wall clock that says nothing about B, heard 6 minutes ago;
    # under the event clock readings are the clock, so B has been silent for 16 minutes when its reading comes.
    for config, lost in ((WALL, 0), (DetectionConfig(), 1)):
        rec = Recorder()
        eng = DetectionEngine(rec, config)
        eng.set_trips([make_trip("T-A", "A", route=ROUTE), make_trip("T-B", "B", route=[DIWEK, GUDANG])])
        a = Track(tracker_id="A", t=T0 + 60).drive(ROUTE, 30, 30, end_m=5000)
        b = Track(tracker_id="B", t=T0 + 60).drive([DIWEK, GUDANG], 30, 30, end_m=2000)
        for r in sorted(a.readings + b.readings, key=lambda r: r.ts):
            eng.process([r])
            eng.tick(r.ts)
        now = a.t
        assert now - b.t >= 6 * 60
        ahead = Reading("A", ts=now + 10 * 60, lat=point_at(ROUTE, 5100)[0], lon=point_at(ROUTE, 5100)[1], seq=999)
        eng.process([ahead, Reading("B", ts=now, lat=b.readings[-1].lat, lon=b.readings[-1].lon, seq=999)])
        eng.tick(now + 1 if config.clock == "wall" else ahead.ts)
        assert [(e.tracker_id, e.type) for e in rec.raised()] == [("B", LOST)] * lost, config.clock
