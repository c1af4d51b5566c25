"""signal_lost: silence in transit longer than max_silence_min; ts = the last reading before it."""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, replay

LOST = AlertType.SIGNAL_LOST
ROUTE = line(GUDANG, 0, -10_000)


def setup(**trip: object) -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip(route=ROUTE, **trip)])  # type: ignore[arg-type]
    return eng, rec


def test_raised_by_the_clock_and_resolved_when_readings_resume() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=3000)
    replay(eng, tr.readings)
    last = tr.readings[-1].ts
    for minute in range(1, 15):
        eng.tick(last + 60 * minute)
    assert rec.raised(LOST) == []
    eng.tick(last + 15 * 60 + 1)
    eng.tick(last + 16 * 60)
    raised = rec.raised(LOST)
    assert len(raised) == 1 and raised[0].ts == last
    assert raised[0].lat == tr.readings[-1].lat
    tr.silent(20).drive(ROUTE, 40, 30, start_m=3000, end_m=4000)
    replay(eng, tr.readings[-3:])
    resolved = rec.resolved(LOST)
    assert len(resolved) == 1 and resolved[0].details["reason"] == "signal_resumed"
    assert len(rec.raised(LOST)) == 1


def test_a_silence_no_tick_saw_is_recorded_once_when_readings_resume() -> None:
    # Under KAWAL_CLOCK=event a lone tracker's silence does not move the clock.
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=3000)
    last = tr.readings[-1].ts
    tr.silent(20).drive(ROUTE, 40, 30, start_m=3000, end_m=5000)
    replay(eng, tr.readings)
    raised = rec.raised(LOST)
    assert len(raised) == 1 and raised[0].ts == last and raised[0].details["retrospective"] is True
    assert len(rec.resolved(LOST)) == 1


def test_readings_without_a_fix_are_signal() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=3000)
    for _ in range(60):
        tr.add(None, None, 30, bat=80)  # in a tunnel of a warehouse: no GPS, still talking
    replay(eng, tr.readings)
    assert rec.raised(LOST) == []


def test_offline_status_does_not_end_the_trip() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=3000)
    replay(eng, tr.readings)
    eng.on_status("TRK-1", "offline", tr.t + 5)
    eng.tick(tr.t + 16 * 60)
    raised = rec.raised(LOST)
    assert len(raised) == 1 and raised[0].details["status"] == "offline"


def test_never_heard_from_since_departure() -> None:
    eng, rec = setup()
    eng.tick(T0 + 10 * 60)
    assert rec.raised(LOST) == []
    eng.tick(T0 + 16 * 60)
    raised = rec.raised(LOST)
    assert len(raised) == 1 and raised[0].ts == T0 and raised[0].details["last_reading"] is None


def test_silence_in_storage_is_not_signal_lost() -> None:
    eng, rec = setup()
    tr = Track(t=T0 - 4 * 3600).stay(GUDANG, 5)
    replay(eng, tr.readings)
    eng.tick(T0 - 60)  # hours of silence before departure
    assert rec.raised(LOST) == []
    # after arrival too
    tr2 = Track(t=T0 + 60).drive(ROUTE, 40, 30).stay(ROUTE[-1], 5)
    replay(eng, tr2.readings)
    eng.tick(tr2.t + 3600)
    assert rec.raised(LOST) == []
    # silence that began before departure counts from departure, with ts = the last reading
    eng3, rec3 = setup()
    replay(eng3, tr.readings)
    eng3.tick(T0 + 14 * 60)
    assert rec3.raised(LOST) == []
    eng3.tick(T0 + 16 * 60)
    assert [e.ts for e in rec3.raised(LOST)] == [tr.readings[-1].ts]


def test_per_trip_max_silence() -> None:
    eng, rec = setup(max_silence_min=5)
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=2000)
    replay(eng, tr.readings)
    eng.tick(tr.t + 6 * 60)
    assert len(rec.raised(LOST)) == 1


def test_backlog_that_fills_the_gap_in_event_time_raises_nothing() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=6000)
    live, backlog = tr.readings[:10], tr.readings[10:]
    replay(eng, live)
    eng.process(backlog)  # stored during a coverage hole, sent in one batch; no tick saw the hole
    eng.tick(backlog[-1].ts)
    assert rec.raised(LOST) == []
