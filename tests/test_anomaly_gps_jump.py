"""gps_jump and the GPS filter: an impossible fix warns and is kept away from the movement detectors."""

from __future__ import annotations

import random

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, offset, point_at, replay

JUMP = AlertType.GPS_JUMP
ROUTE = line(GUDANG, 0, -10_000)


def setup() -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip(route=ROUTE)])
    return eng, rec


def test_jump_warns_is_excluded_and_resolves_after_quiet_time() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 10, end_m=2000)
    bad = tr.add(*offset(*point_at(ROUTE, 2100), 8000, 0), 10)  # 8 km east in 10 s
    tr.drive(ROUTE, 40, 10, start_m=2200, end_m=7000)
    replay(eng, tr.readings)
    raised = rec.raised(JUMP)
    assert len(raised) == 1
    ev = raised[0]
    assert ev.ts == bad.ts and ev.lat == bad.lat
    assert ev.details["speed_kmh"] > 2000 and ev.details["distance_km"] > 7.9
    assert rec.raised(AlertType.ROUTE_DEVIATION) == [] and rec.raised(AlertType.UNSCHEDULED_STOP) == []
    assert eng.stats["fix_jump"] == 1
    resolved = rec.resolved(JUMP)
    assert len(resolved) == 1 and resolved[0].ts >= bad.ts + 300


def test_quiet_time_also_ends_it_on_a_tick() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 10, end_m=1000)
    bad = tr.add(*offset(*GUDANG, 9000, 0), 10)
    replay(eng, tr.readings)
    eng.tick(bad.ts + 200)
    assert rec.resolved(JUMP) == []
    eng.tick(bad.ts + 301)
    assert len(rec.resolved(JUMP)) == 1


def test_noise_within_accuracy_at_one_second_is_no_jump() -> None:
    eng, rec = setup()
    rng = random.Random(5)
    tr = Track(t=T0 + 60)
    for i in range(600):  # 10 minutes at 1 Hz, 60 km/h, Gaussian noise with sigma = acc
        lat, lon = point_at(ROUTE, 16.7 * i)
        tr.add(*offset(lat, lon, rng.gauss(0, 8), rng.gauss(0, 8)), 1, acc=8)
    replay(eng, tr.readings, batch=50)
    assert rec.raised() == []


def test_bad_first_fix_is_replaced_by_consistent_fixes() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60)
    tr.add(*offset(*GUDANG, 30_000, 0), 0)  # a cold-start fix 30 km away is the first accepted one
    tr.drive(ROUTE, 40, 10, end_m=3000)
    replay(eng, tr.readings)
    assert len(rec.raised(JUMP)) == 1  # the first good fixes are rejected until three agree
    st = eng.tracker_state("TRK-1")
    assert st is not None and abs(st.fx_lat - tr.readings[-1].lat) < 1e-9  # type: ignore[operator]
    assert rec.raised(AlertType.ROUTE_DEVIATION) == []


def test_filters_zero_repeated_and_late_fixes() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 10, end_m=2000)
    tr.add(0.0, 0.0, 10)
    tr.add(tr.readings[-2].lat, tr.readings[-2].lon, 10)  # the same fix re-sent
    replay(eng, tr.readings)
    late = Track(t=T0 + 70, seq=500)
    late.add(*offset(*GUDANG, 20_000, 0))  # old and far: must not look like a jump
    eng.process(late.readings)
    assert rec.raised() == []
    assert eng.stats["fix_repeated"] == 1 and eng.stats["late"] == 1
