"""route_deviation: several fixes outside max(corridor, k*acc) enter it; hysteresis leaves it."""

from __future__ import annotations

import pytest

from alerts.model import AlertType
from anomaly.config import DetectionConfig
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, offset, point_at, replay

DEV = AlertType.ROUTE_DEVIATION
ROUTE = line(GUDANG, 0, -10_000)  # 10 km due south


def setup(**cfg: object) -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec, DetectionConfig(**cfg))  # type: ignore[arg-type]
    eng.set_trips([make_trip(route=ROUTE, corridor_m=200)])
    return eng, rec


def east(d_along: float, east_m: float) -> tuple[float, float]:
    lat, lon = point_at(ROUTE, d_along)
    return offset(lat, lon, east_m, 0)


@pytest.mark.parametrize("mode", ["hint", "numpy", "python"])
def test_following_the_route_raises_nothing(mode: str) -> None:
    eng, rec = setup(route_search=mode)
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 10)
    replay(eng, tr.readings)
    assert rec.raised(DEV) == []


@pytest.mark.parametrize("mode", ["hint", "numpy", "python"])
def test_leaving_and_returning(mode: str) -> None:
    eng, rec = setup(route_search=mode)
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 10, end_m=3000)
    first_out = tr.add(*east(3100, 600), 30)  # fixes 30 s apart: plausible speeds throughout
    tr.add(*east(3200, 650), 30)
    replay(eng, tr.readings)
    assert rec.raised(DEV) == []  # two fixes 30 s apart: not yet
    tr.add(*east(3300, 650), 30)
    replay(eng, tr.readings[-1:])
    raised = rec.raised(DEV)
    assert len(raised) == 1
    ev = raised[0]
    assert ev.ts == first_out.ts and ev.lat == first_out.lat
    assert ev.details["distance_m"] > 600 and ev.details["corridor_m"] == 200
    tr.add(*east(3400, 700), 30)  # still out: no second write
    tr.add(*east(3500, 20), 30)
    replay(eng, tr.readings[-2:])
    assert len(rec.raised(DEV)) == 1 and rec.resolved(DEV) == []  # one fix back is not enough
    back = tr.add(*east(3600, 10), 30)
    replay(eng, tr.readings[-1:])
    resolved = rec.resolved(DEV)
    assert len(resolved) == 1 and resolved[0].ts == back.ts
    assert resolved[0].details["reason"] == "back_in_corridor"
    assert "gps_jump" not in rec.types()


def test_a_single_bad_fix_never_triggers() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 10, end_m=3000)
    tr.add(*east(3100, 400), 10)  # 400 m off, plausible speed: accepted but alone
    tr.drive(ROUTE, 40, 10, start_m=3200, end_m=6000)
    tr.add(*east(6100, 3000), 10)  # 3 km off in 10 s: a jump, never seen by the detector
    tr.drive(ROUTE, 40, 10, start_m=6200)
    replay(eng, tr.readings)
    assert rec.raised(DEV) == []
    assert len(rec.raised(AlertType.GPS_JUMP)) == 1


def test_sparse_fixes_enter_by_duration() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 60, end_m=3000)
    first_out = tr.add(*east(3500, 800), 300)
    tr.add(*east(4000, 900), 300)
    replay(eng, tr.readings)
    raised = rec.raised(DEV)
    assert len(raised) == 1 and raised[0].ts == first_out.ts


def test_corridor_widens_with_reported_accuracy() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 10, end_m=3000, acc=5)
    for i in range(5):  # 250 m off with acc 90: corridor is max(200, 3*90) = 270 m
        tr.add(*east(3100 + 100 * i, 250), 30, acc=90)
    for i in range(5):  # 500 m off with acc 150: worse than max_acc_m, not used at all
        tr.add(*east(3700 + 100 * i, 500), 30, acc=150)
    replay(eng, tr.readings)
    assert rec.raised(DEV) == []
    assert eng.stats["fix_poor_accuracy"] == 5


def test_sparse_pair_crossing_the_corridor_restarts_the_count() -> None:
    eng, rec = setup(deviation_entry_count=2, deviation_entry_s=10_000)
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 30, end_m=2000)
    # zig-zag across the planned road: each fix is outside, but the crate crossed the route between them
    for i, side in enumerate([350, -350, 350, -350]):
        tr.add(*east(2500 + 400 * i, side), 40)
    replay(eng, tr.readings)
    assert rec.raised(DEV) == []
    # the same distances on one side only are a deviation
    tr.add(*east(4500, 350), 40)
    tr.add(*east(4900, 380), 40)
    replay(eng, tr.readings[-2:])
    assert len(rec.raised(DEV)) == 1


def test_not_checked_in_storage_before_departure() -> None:
    eng, rec = setup()
    tr = Track(t=T0 - 3600)
    for i in range(10):
        tr.add(*east(0, 1000 + 10 * i), 60)  # far off the route, but the trip has not started
    replay(eng, tr.readings)
    assert rec.raised(DEV) == []


def test_late_fixes_cannot_fake_a_deviation() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 10, end_m=4000)
    replay(eng, tr.readings)
    last = tr.readings[-1].ts
    late = Track(t=last - 300, seq=1000)
    for i in range(5):
        late.add(*east(2000, 900 + i), 10)
    eng.process(late.readings)
    assert rec.raised(DEV) == [] and eng.stats["late"] == 5


def test_resolves_when_the_trip_is_replaced() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 10).drive(ROUTE, 40, 10, end_m=3000)
    for i in range(4):
        tr.add(*east(3100 + 100 * i, 900), 60)
    replay(eng, tr.readings)
    assert len(rec.raised(DEV)) == 1
    eng.set_trips([])  # the trip is withdrawn: its alerts end with it
    tr.add(*east(3600, 900), 60)
    replay(eng, tr.readings[-1:])
    assert [e.details["reason"] for e in rec.resolved(DEV)] == ["trip_changed"]
