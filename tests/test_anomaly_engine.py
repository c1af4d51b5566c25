"""The engine: event-time order, duplicates, trips and their changes, snapshots, timers, failures."""

from __future__ import annotations

import random
import zlib

import pytest

from alerts.model import AlertAction, AlertEvent, AlertType
from anomaly.config import DetectionConfig
from anomaly.engine import DetectionEngine
from anomaly.phase import Phase
from anomaly.state import TrackerState, decode_states, encode_states
from anomaly.timers import Timers
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, offset, point_at, replay
from devices.reading import Reading
from kawal.trips import Trip

ROUTE = line(GUDANG, 0, -10_000)
MID = point_at(ROUTE, 5000)
DEST = ROUTE[-1]


def engine(*trips: object, config: DetectionConfig | None = None) -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec, config)
    eng.set_trips(list(trips) or [make_trip(route=ROUTE)])  # type: ignore[arg-type]
    return eng, rec


def incident_track() -> Track:
    """A trip with a seal break, a deviation, a long stop and a late arrival."""
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=3000)
    tr.add(*offset(*point_at(ROUTE, 3200), 600, 0), 30)
    tr.add(*offset(*point_at(ROUTE, 3400), 650, 0), 30, seal="open")
    tr.add(*offset(*point_at(ROUTE, 3600), 650, 0), 30)
    tr.drive(ROUTE, 40, 30, start_m=3800, end_m=5000)
    tr.stay(MID, 15)
    tr.drive(ROUTE, 40, 30, start_m=5000)
    tr.stay(DEST, 5)
    return tr


def key(events: list[AlertEvent]) -> list[tuple[str, str, float, str | None]]:
    return [(str(e.action), str(e.type), e.ts, e.trip_id) for e in events]


def test_shuffled_backlog_gives_the_same_alerts_as_live() -> None:
    live_eng, live = engine()
    tr = incident_track()
    replay(live_eng, tr.readings)
    assert {"seal_break", "route_deviation", "unscheduled_stop"} <= set(live.types())
    for seed in range(3):
        eng, rec = engine()
        backlog = list(tr.readings)
        random.Random(seed).shuffle(backlog)
        eng.process(backlog)
        eng.tick(tr.t)
        assert sorted(key(rec.events)) == sorted(key(live.events))


def test_duplicates_are_ignored() -> None:
    eng, rec = engine()
    tr = incident_track()
    doubled = [r for r in tr.readings for _ in range(2)]
    eng.process(doubled)
    eng.process(tr.readings[-20:])  # sent again in a later batch
    ref, ref_rec = engine()
    ref.process(tr.readings)
    assert key(rec.events) == key(ref_rec.events)
    assert eng.stats["duplicate"] == len(tr.readings) + 1  # in-batch copies, plus the latest again
    assert eng.stats["late"] == 19


def test_snapshot_restore_keeps_timers_and_raises_no_twin() -> None:
    eng, _ = engine()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=5000).stay(MID, 6)
    replay(eng, tr.readings)
    blob = eng.snapshot()
    # a restart: new engine, trips set first (as the service does), then the snapshot
    eng2, rec2 = engine()
    eng2.restore(blob)
    tr.stay(MID, 6)
    replay(eng2, tr.readings[-12:])
    raised = rec2.raised(AlertType.UNSCHEDULED_STOP)
    assert len(raised) == 1 and raised[0].ts == tr.readings[len(tr.readings) - 25].ts
    # and again after the alert: the restored engine knows it is already raised
    eng3, rec3 = engine()
    eng3.restore(eng2.snapshot())
    tr.stay(MID, 5)
    tr.drive(ROUTE, 40, 30, start_m=5000, end_m=6000)
    replay(eng3, tr.readings[-14:])
    assert rec3.raised() == []
    assert [e.type for e in rec3.resolved()] == [AlertType.UNSCHEDULED_STOP]


def test_snapshot_restore_before_trips_are_set_and_silence_timer() -> None:
    eng, _ = engine()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=3000)
    replay(eng, tr.readings)
    blob = eng.snapshot()
    eng2 = DetectionEngine(rec2 := Recorder())
    eng2.restore(blob)  # restore first, trips after: both orders work
    eng2.set_trips([make_trip(route=ROUTE)])
    eng2.tick(tr.t + 10 * 60)
    assert rec2.raised() == []
    eng2.tick(tr.t + 16 * 60)
    assert [e.ts for e in rec2.raised(AlertType.SIGNAL_LOST)] == [tr.t]


def test_restore_rejects_garbage() -> None:
    eng, _ = engine()
    with pytest.raises(ValueError):
        eng.restore(b"not a snapshot")


def test_tracker_state_codec_round_trip_and_damage() -> None:
    a, b = TrackerState("A"), TrackerState("B")
    a.add_seal_episode(1.0, float("inf"))
    a.fx_lat, a.active, a.last_seq, a.trip = -7.5, 0b101, 2**70, "T-9"
    blob = encode_states([a, b])
    again = {st.tid: st for st in decode_states(blob)}
    for name in TrackerState.__slots__:
        if name != "sched":
            va, vb = getattr(a, name), getattr(again["A"], name)
            assert va == vb or (va != va and vb != vb), name
    assert again["B"].fx_lat is again["A"].fx_lon  # unset times share the NaN singleton again
    for bad in (b"", b"garbage", zlib.compress(b"KWDS2"), zlib.compress(zlib.decompress(blob)[:-8])):
        with pytest.raises(ValueError):
            decode_states(bad)


def test_next_trip_takes_over_at_its_departure() -> None:
    day = 24 * 3600
    t1 = make_trip("T-1", route=ROUTE)
    back = list(reversed(ROUTE))
    t2 = make_trip("T-2", route=back, depart_after=T0 + day, arrive_by=T0 + day + 3 * 3600)
    eng, rec = engine(t1, t2)
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30).stay(DEST, 10)
    replay(eng, tr.readings)
    assert eng.phase_of("TRK-1", tr.t) == Phase.ARRIVED
    for i in range(4):  # moved out of the PPS store at night: unexpected
        tr.add(*offset(*DEST, 300 + 200 * i, 0), 30)
    replay(eng, tr.readings[-4:])
    assert [e.trip_id for e in rec.raised(AlertType.UNEXPECTED_MOVEMENT)] == ["T-1"]
    eng.tick(T0 + day + 1)  # T-2 departs: T-1's alerts end with it
    resolved = rec.resolved(AlertType.UNEXPECTED_MOVEMENT)
    assert len(resolved) == 1 and resolved[0].trip_id == "T-1"
    assert resolved[0].details["reason"] == "trip_changed"
    assert eng.phase_of("TRK-1", T0 + day + 2) == Phase.TRANSIT
    st = eng.tracker_state("TRK-1")
    assert st is not None and st.trip == "T-2"


def test_set_trips_keeps_unchanged_plans_and_drops_removed_ones() -> None:
    a = make_trip("A", "TRK-A", route=ROUTE, updated_at=T0)
    b = make_trip("B", "TRK-B", route=ROUTE, updated_at=T0)
    eng, _ = engine(a, b)
    plan_a = eng._plans["A"]
    b500 = make_trip("B", "TRK-B", route=ROUTE, updated_at=T0 + 1, corridor_m=500)
    eng.set_trips([a, b500])
    assert eng._plans["A"] is plan_a and eng._plans["B"].corridor_m == 500
    # the API hands over a full-precision trip; the database gives it back with milliseconds
    fresh = make_trip("A", "TRK-A", route=ROUTE, updated_at=T0 + 0.1239996)
    eng.upsert_trip(fresh)
    plan_a = eng._plans["A"]
    eng.set_trips([Trip.model_validate_json(fresh.model_dump_json()), b500])
    assert eng._plans["A"] is plan_a
    eng.set_trips([a])
    assert set(eng._plans) == {"A"} and "TRK-B" not in eng._by_tracker
    eng.upsert_trip(make_trip("A", "TRK-Z", route=ROUTE, updated_at=T0 + 2))  # moved to another tracker
    assert "TRK-A" not in eng._by_tracker and [p.trip_id for p in eng._by_tracker["TRK-Z"]] == ["A"]


def test_a_failing_sink_is_retried_and_never_crashes() -> None:
    calls: list[AlertEvent] = []

    def flaky(ev: AlertEvent) -> None:
        calls.append(ev)
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    eng = DetectionEngine(flaky)
    eng.set_trips([make_trip(route=ROUTE)])
    tr = Track(t=T0 + 60)
    tr.add(*GUDANG, 30, seal="open")
    tr.add(*GUDANG, 30, seal="open")
    tr.add(*GUDANG, 30, seal="open")
    replay(eng, tr.readings)
    assert [e.type for e in calls] == [AlertType.SEAL_BREAK, AlertType.SEAL_BREAK]
    assert eng.stats["sink_errors"] == 1


def test_bad_readings_are_counted_not_fatal() -> None:
    eng, rec = engine()
    eng.process([Reading("TRK-1", ts=T0 + 60, lat=float("nan"), lon=112.0)])
    eng.process([Reading("TRK-1", ts=T0 + 90, lat=95.0, lon=112.0)])
    eng.process([])
    assert eng.stats["fix_invalid"] == 2 and rec.events == []


def test_a_reading_far_in_the_future_is_not_used_for_movement() -> None:
    eng, rec = engine(make_trip(route=ROUTE), config=DetectionConfig(clock="wall", future_tolerance_s=3600))
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=2000)
    replay(eng, tr.readings)
    eng.process([Reading("TRK-1", ts=tr.t + 6 * 3600, lat=MID[0], lon=MID[1], seal="open")])
    tr.drive(ROUTE, 40, 30, start_m=2000, end_m=4000)
    replay(eng, tr.readings[-6:])
    assert eng.stats["future"] == 1
    assert rec.types() == ["seal_break"]  # the seal is still read; the later readings are not "late"
    assert "late" not in eng.stats


def test_future_filter_is_off_by_default_so_big_replay_batches_work() -> None:
    eng, rec = engine()
    eng.tick(T0)  # under KAWAL_CLOCK=event the tick trails the next batch, here by hours
    tr = Track(t=T0 + 60).drive(ROUTE, 10, 60).stay(DEST, 5)  # one hour on the road, one batch
    eng.process(tr.readings)
    assert "future" not in eng.stats and eng.stats["arrivals"] == 1
    assert rec.raised() == []


def test_status_of_unknown_tracker_is_ignored() -> None:
    eng, _ = engine()
    eng.on_status("NOBODY", "offline", T0)
    assert eng.tracker_state("NOBODY") is None
    eng.on_status("TRK-1", "online", T0)
    st = eng.tracker_state("TRK-1")
    assert st is not None and st.status == "online"


def test_tick_touches_only_due_trackers() -> None:
    trips = [make_trip(f"T-{i}", f"TRK-{i}", route=ROUTE) for i in range(200)]
    eng, rec = engine(*trips)
    readings = [Reading(f"TRK-{i}", ts=T0 + 60 + i, lat=GUDANG[0], lon=GUDANG[1]) for i in range(200)]
    eng.process(readings)
    eng.tick(T0 + 120)
    assert len(eng._timers) == 200 and rec.events == []
    now = T0 + 60 + 15 * 60 + 100.5  # more than 15 minutes of silence for trackers 0..100
    eng.tick(now)
    eng.tick(now + 1)  # timers have whole-second buckets: a check may come up to 1 s late
    lost = rec.raised(AlertType.SIGNAL_LOST)
    assert {e.tracker_id for e in lost} == {f"TRK-{i}" for i in range(101)} and len(lost) == 101


def test_timers_move_and_pop_in_order() -> None:
    timers = Timers()
    a, b = TrackerState("a"), TrackerState("b")
    timers.at(a, 10.2)
    timers.at(b, 5.0)
    timers.at(a, 3.0)
    assert a.sched == 3 and len(timers) == 2
    assert timers.pop_due(4) == ["a"]
    a.sched = 0
    timers.at(a, 5)
    assert timers.pop_due(100) == ["a", "b"]
    timers.cancel(b)
    assert len(timers) == 0


def test_events_carry_contract_fields() -> None:
    eng, rec = engine()
    tr = incident_track()
    replay(eng, tr.readings)
    for ev in rec.events:
        assert ev.tracker_id == "TRK-1" and ev.trip_id == "T-1" and ev.crate_id == "C-T-1"
        if ev.action == AlertAction.RESOLVE:
            assert isinstance(ev.details["reason"], str)
    kinds = {(str(e.action), str(e.type)) for e in rec.events}
    assert ("resolve", "seal_break") not in kinds
