"""unscheduled_stop: raised while still stopped after max_stop_min, outside every allowed zone."""

from __future__ import annotations

import random

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import (
    GUDANG,
    T0,
    Recorder,
    Track,
    gauss_markov,
    line,
    make_trip,
    offset,
    point_at,
    replay,
)

STOP = AlertType.UNSCHEDULED_STOP
ROUTE = line(GUDANG, 0, -10_000)
MID = point_at(ROUTE, 5000)


def setup(**trip: object) -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip(route=ROUTE, **trip)])  # type: ignore[arg-type]
    return eng, rec


def drive_to_mid(tr: Track) -> None:
    tr.drive(ROUTE, 40, 30, end_m=5000)


def test_long_stop_is_raised_while_stopped_and_resolves_when_moving_on() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    stop_began = tr.readings[-1].ts  # the first fix at the stop is the last one of the drive
    tr.stay(MID, 9.5)
    replay(eng, tr.readings)
    assert rec.raised(STOP) == []
    tr.stay(MID, 1.5)
    replay(eng, tr.readings[-3:])
    raised = rec.raised(STOP)
    assert len(raised) == 1
    assert raised[0].ts == stop_began
    assert raised[0].details["max_stop_min"] == 10
    tr.stay(MID, 10)  # still stopped: no second write
    tr.drive(ROUTE, 40, 30, start_m=5000, end_m=7000)
    replay(eng, tr.readings)
    assert len(rec.raised(STOP)) == 1
    resolved = rec.resolved(STOP)
    assert len(resolved) == 1 and resolved[0].details["reason"] == "moved_on"


def test_short_stop_raises_nothing() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    tr.stay(MID, 9)
    tr.drive(ROUTE, 40, 30, start_m=5000)
    replay(eng, tr.readings)
    assert rec.raised(STOP) == []


def test_allowed_stop_origin_and_destination_raise_nothing() -> None:
    eng, rec = setup(stops=[{"name": "Pos Polisi", "lat": MID[0], "lon": MID[1], "radius_m": 100}])
    tr = Track(t=T0 - 600)
    tr.stay(GUDANG, 30)  # 20 minutes past departure still at the origin
    drive_to_mid(tr)
    tr.stay(offset(*MID, 60, 30), 30)  # inside the allowed stop's zone
    tr.drive(ROUTE, 40, 30, start_m=5000)
    tr.stay(ROUTE[-1], 30)
    replay(eng, tr.readings)
    assert rec.raised(STOP) == []


def test_parked_gps_noise_is_one_stop() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    noise = gauss_markov(60, sigma_m=20.0, tau_s=120.0, dt_s=30.0, rng=random.Random(7))
    for e, n in noise:  # 30 minutes of a parked receiver wandering by tens of metres
        tr.add(*offset(*MID, e, n), 30, acc=15)
    replay(eng, tr.readings)
    assert len(rec.raised(STOP)) == 1
    assert rec.resolved(STOP) == []


def test_one_bad_fix_does_not_break_the_stop() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    tr.stay(MID, 6)
    tr.add(*offset(*MID, 400, 0), 30)  # 400 m off once (plausible speed, so not a jump)
    tr.stay(MID, 6)
    replay(eng, tr.readings)
    assert len(rec.raised(STOP)) == 1
    assert rec.resolved(STOP) == []


def test_sparse_tracker_is_raised_by_the_fix_that_shows_the_long_stop() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    stop_began = tr.readings[-1].ts
    tr.stay(MID, 10, every_s=300)  # a fix every 5 minutes; the last one at exactly 10 minutes
    replay(eng, tr.readings)
    for minute in range(1, 5):  # the clock alone never extends a stop past its latest fix
        eng.tick(tr.t + 60 * minute)
    assert rec.raised(STOP) == []
    tr.stay(MID, 5, every_s=300)
    replay(eng, tr.readings[-1:])
    raised = rec.raised(STOP)
    assert len(raised) == 1 and raised[0].ts == stop_began and raised[0].details["stopped_min"] == 15.0


def test_stop_duration_counts_from_departure() -> None:
    eng, rec = setup()
    tr = Track(t=T0 - 3600)
    tr.stay(MID, 75)  # parked on the road since before departure (unexpected_movement's business)
    replay(eng, tr.readings)
    raised = rec.raised(STOP)
    assert len(raised) == 1 and raised[0].ts == T0


def test_per_trip_max_stop() -> None:
    eng, rec = setup(max_stop_min=3)
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    tr.stay(MID, 4)
    replay(eng, tr.readings)
    assert len(rec.raised(STOP)) == 1


def test_late_readings_cannot_fake_a_stop() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    tr.drive(ROUTE, 40, 30, end_m=8000)
    replay(eng, tr.readings)
    late = Track(t=T0 + 60, seq=1000).stay(MID, 20)  # 20 minutes "at MID", all older than the latest
    eng.process(late.readings)
    eng.tick(tr.t + 60)
    assert rec.raised(STOP) == []


def test_silent_tracker_is_not_taken_for_a_stopped_one() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    replay(eng, tr.readings)
    for minute in range(1, 40):  # silent for 40 minutes right after driving
        eng.tick(tr.t + 60 * minute)
    assert rec.raised(STOP) == []
    assert len(rec.raised(AlertType.SIGNAL_LOST)) == 1
    # stopped for 7 minutes, then silent for 10 while driving on: a silence is not a stop, whether the
    # ticks fall inside the silence or the next fix (far away) arrives first
    for tick_inside in (True, False):
        eng2, rec2 = setup()
        tr2 = Track(t=T0 + 60)
        drive_to_mid(tr2)
        tr2.stay(MID, 7)
        replay(eng2, tr2.readings)
        if tick_inside:
            for minute in range(1, 11):
                eng2.tick(tr2.t + 60 * minute)
        tr2.silent(10).drive(ROUTE, 40, 30, start_m=7000, end_m=8000)
        replay(eng2, tr2.readings[-4:], batch=4)
        assert rec2.raised(STOP) == [], tick_inside


def test_a_stop_is_as_long_as_its_fixes_show() -> None:
    # 7 minutes of fixes, 5 minutes without any, then fixes at the same place again: 12 minutes at rest
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    drive_to_mid(tr)
    stop_began = tr.readings[-1].ts
    tr.stay(MID, 7).silent(5).stay(MID, 1)
    replay(eng, tr.readings)
    raised = rec.raised(STOP)
    assert len(raised) == 1 and raised[0].ts == stop_began
    # a gap longer than max_silence_min is a silence, not rest: the stop starts again after it
    eng2, rec2 = setup()
    tr2 = Track(t=T0 + 60)
    drive_to_mid(tr2)
    tr2.stay(MID, 5).silent(20)
    restart = tr2.t + 30
    tr2.stay(MID, 9)
    replay(eng2, tr2.readings)
    assert rec2.raised(STOP) == []
    assert len(rec2.raised(AlertType.SIGNAL_LOST)) == 1
    tr2.stay(MID, 2)
    replay(eng2, tr2.readings[-4:])
    raised = rec2.raised(STOP)
    assert len(raised) == 1 and raised[0].ts == restart
