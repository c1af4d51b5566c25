"""seal_break: fires at once on an unexpected opening, never for the expected one, never resolves itself."""

from __future__ import annotations

import random

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import DIWEK, GUDANG, T0, Recorder, Track, make_trip, replay
from devices.reading import Reading

SEAL = AlertType.SEAL_BREAK


Route = list[tuple[float, float]]


def setup(open_after: float | None = T0 + 3600) -> tuple[DetectionEngine, Recorder, Route]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    trip = make_trip(open_after=open_after)
    eng.set_trips([trip])
    return eng, rec, [tuple(p) for p in trip.route]  # type: ignore[misc]


def test_open_in_transit_raises_once_per_episode() -> None:
    eng, rec, route = setup()
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, end_m=1000, seal="closed")
    opened = tr.add(*route[1], 30, seal="open")
    tr.add(*route[1], 30, seal="open")
    tr.add(*route[1], 30, seal="open")
    replay(eng, tr.readings)
    raised = rec.raised(SEAL)
    assert len(raised) == 1
    ev = raised[0]
    assert ev.ts == opened.ts and ev.trip_id == "T-1" and ev.crate_id == "C-T-1"
    assert ev.details["seal"] == "open" and ev.details["previous"] == "closed"
    # closed again, then a second opening: a second raise (the store decides whether it is a new alert)
    tr.add(*route[1], 30, seal="closed")
    second = tr.add(*route[1], 30, seal="open")
    replay(eng, tr.readings[-2:])
    assert [e.ts for e in rec.raised(SEAL)] == [opened.ts, second.ts]
    assert rec.resolved(SEAL) == []  # never resolves by itself


def test_tampered_after_open_updates_the_alert() -> None:
    eng, rec, route = setup()
    tr = Track(t=T0 + 60)
    tr.add(*route[1], 30, seal="open")
    tr.add(*route[1], 30, seal="tampered")
    replay(eng, tr.readings)
    assert [e.details["seal"] for e in rec.raised(SEAL)] == ["open", "tampered"]


def test_expected_opening_at_destination_after_open_after() -> None:
    eng, rec, route = setup(open_after=T0 + 1800)
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, seal="closed")
    tr.stay(DIWEK, 30, seal="closed")
    assert tr.t > T0 + 1800
    tr.add(*DIWEK, 30, seal="open")
    tr.add(None, None, 30, seal="open")  # indoors, no fix: still expected
    replay(eng, tr.readings)
    assert rec.raised(SEAL) == []
    assert eng.stats["seal_expected_opening"] == 1


def test_opening_at_destination_before_open_after_raises() -> None:
    eng, rec, route = setup(open_after=T0 + 5 * 3600)
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, seal="closed")
    tr.stay(DIWEK, 5, seal="closed")
    tr.add(*DIWEK, 30, seal="open")
    replay(eng, tr.readings)
    assert len(rec.raised(SEAL)) == 1


def test_opening_outside_destination_after_open_after_raises() -> None:
    eng, rec, route = setup(open_after=T0)
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, end_m=2000, seal="closed")
    tr.add(*route[1], 30, seal="open")
    replay(eng, tr.readings)
    assert len(rec.raised(SEAL)) == 1


def test_no_open_after_means_never_expected() -> None:
    eng, rec, route = setup(open_after=None)
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, seal="closed")
    tr.stay(DIWEK, 5)
    tr.add(*DIWEK, 30, seal="open")
    replay(eng, tr.readings)
    assert len(rec.raised(SEAL)) == 1


def test_first_open_reading_of_a_shuffled_backlog_raises_with_its_time() -> None:
    eng, rec, route = setup()
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, end_m=1500, seal="closed")
    first_open = tr.add(*route[1], 30, seal="open")
    tr.add(*route[1], 30, seal="open")
    tr.add(*route[1], 30, seal="closed")
    backlog = list(tr.readings)
    random.Random(3).shuffle(backlog)
    eng.process(backlog)
    raised = rec.raised(SEAL)
    assert len(raised) == 1 and raised[0].ts == first_open.ts


def test_late_open_reading_still_raises_but_a_known_episode_does_not() -> None:
    eng, rec, route = setup()
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, end_m=3000, seal="closed")
    live = tr.readings
    late_open = Reading("TRK-1", ts=live[5].ts + 1, lat=live[5].lat, lon=live[5].lon, seq=999, seal="open")
    replay(eng, live)
    eng.process([late_open])  # older than the tracker's latest reading
    raised = rec.raised(SEAL)
    assert len(raised) == 1 and raised[0].ts == late_open.ts and raised[0].details.get("late") is True
    assert eng.stats["late"] == 1
    # the same episode again (a replay, a second copy) raises nothing more
    eng.process([late_open])
    assert len(rec.raised(SEAL)) == 1


def test_seal_is_read_from_readings_with_bad_or_no_fix() -> None:
    eng, rec, route = setup()
    tr = Track(t=T0 + 60)
    tr.drive(route, 40, 30, end_m=1000, seal="closed")
    tr.add(0.0, 0.0, 30, seal="open")  # Null Island
    replay(eng, tr.readings)
    assert len(rec.raised(SEAL)) == 1
    eng2, rec2, _ = setup()
    tr2 = Track(t=T0 + 60)
    tr2.drive(route, 40, 30, end_m=1000, seal="closed")
    tr2.add(-7.0, 113.5, 10, seal="tampered", acc=500)  # a jump with terrible accuracy
    replay(eng2, tr2.readings)
    assert [e.details["seal"] for e in rec2.raised(SEAL)] == ["tampered"]


def test_tracker_without_trip_raises_with_null_trip() -> None:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.process([Reading("LOOSE-1", ts=T0, lat=GUDANG[0], lon=GUDANG[1], seal="open")])
    raised = rec.raised(SEAL)
    assert len(raised) == 1 and raised[0].trip_id is None and raised[0].tracker_id == "LOOSE-1"
