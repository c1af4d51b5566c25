"""overdue: not arrived by arrive_by (ts = arrive_by); resolves on arrival."""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.phase import Phase
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, replay

LATE = AlertType.OVERDUE
ROUTE = line(GUDANG, 0, -10_000)
DEST = ROUTE[-1]
ARRIVE_BY = T0 + 3600


def setup() -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip(route=ROUTE, arrive_by=ARRIVE_BY, max_stop_min=600, max_silence_min=600)])
    return eng, rec


def test_late_arrival_raises_then_resolves() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 60, end_m=5000).stay(ROUTE[10], 60, every_s=60)
    replay(eng, tr.readings)
    raised = rec.raised(LATE)
    assert len(raised) == 1 and raised[0].ts == ARRIVE_BY and raised[0].details["destination"]
    tr.drive(ROUTE, 40, 30, start_m=5000)
    entered = tr.readings[-1].ts
    tr.stay(DEST, 3)
    replay(eng, tr.readings)
    resolved = rec.resolved(LATE)
    assert len(resolved) == 1 and resolved[0].ts == entered and resolved[0].details["reason"] == "arrived"
    assert eng.phase_of("TRK-1", tr.t) == Phase.ARRIVED
    assert len(rec.raised(LATE)) == 1


def test_raised_by_the_clock_while_silent() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 60, end_m=3000)
    replay(eng, tr.readings)
    eng.tick(ARRIVE_BY - 1)
    assert rec.raised(LATE) == []
    eng.tick(ARRIVE_BY + 1)
    assert [e.ts for e in rec.raised(LATE)] == [ARRIVE_BY]


def test_on_time_arrival_raises_nothing() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30).stay(DEST, 120)
    replay(eng, tr.readings)
    assert tr.t > ARRIVE_BY
    assert rec.raised(LATE) == []


def test_inside_the_zone_before_the_deadline_waits_for_the_rest() -> None:
    eng, rec = setup()
    tr = Track(t=ARRIVE_BY - 20 * 60).drive(ROUTE, 40, 30)
    assert tr.t < ARRIVE_BY
    tr.t = ARRIVE_BY - 60  # enters the zone one minute before the deadline
    tr.stay(DEST, 5)
    replay(eng, tr.readings)
    assert rec.raised(LATE) == []
    assert eng.phase_of("TRK-1", tr.t) == Phase.ARRIVED
