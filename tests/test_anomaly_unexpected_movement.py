"""unexpected_movement: leaving the storage zone (origin before departure, destination after arrival)."""

from __future__ import annotations

import random

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, gauss_markov, line, make_trip, offset, replay

MOVE = AlertType.UNEXPECTED_MOVEMENT
ROUTE = line(GUDANG, 0, -10_000)
DEST = ROUTE[-1]


def setup() -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip(route=ROUTE)])
    return eng, rec


def test_leaving_the_origin_before_departure_and_coming_back() -> None:
    eng, rec = setup()
    tr = Track(t=T0 - 3 * 3600).stay(GUDANG, 10)
    first_out = tr.add(*offset(*GUDANG, 400, 0), 30)
    tr.add(*offset(*GUDANG, 600, 0), 30)
    replay(eng, tr.readings)
    assert rec.raised(MOVE) == []  # two fixes 30 s apart: not confirmed yet
    tr.add(*offset(*GUDANG, 800, 0), 30)
    replay(eng, tr.readings[-1:])
    raised = rec.raised(MOVE)
    assert len(raised) == 1 and raised[0].ts == first_out.ts
    assert raised[0].details["kind"] == "origin" and raised[0].trip_id == "T-1"
    tr.add(*offset(*GUDANG, 30, 0), 60)
    tr.add(*offset(*GUDANG, 20, 0), 30)
    replay(eng, tr.readings[-2:])
    resolved = rec.resolved(MOVE)
    assert len(resolved) == 1 and resolved[0].details["reason"] == "back_in_zone"


def test_indoor_noise_is_not_movement() -> None:
    eng, rec = setup()
    tr = Track(t=T0 - 3 * 3600)
    rng = random.Random(11)
    for e, n in gauss_markov(240, sigma_m=35.0, tau_s=300.0, dt_s=30.0, rng=rng):
        tr.add(*offset(*GUDANG, e, n), 30, acc=40)  # indoors: a poor fix wandering ~35 m
    for _ in range(10):
        tr.add(*offset(*GUDANG, rng.uniform(-600, 600), 400), 30, acc=250)  # multipath, honest acc
    replay(eng, tr.readings)
    assert rec.raised(MOVE) == []


def test_leaving_the_destination_after_arrival() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30).stay(DEST, 30)
    replay(eng, tr.readings)
    assert rec.raised(MOVE) == []
    for i in range(4):
        tr.add(*offset(*DEST, 300 + 200 * i, 0), 30)
    replay(eng, tr.readings[-4:])
    raised = rec.raised(MOVE)
    assert len(raised) == 1 and raised[0].details["kind"] == "destination"


def test_departure_allows_the_movement() -> None:
    eng, rec = setup()
    tr = Track(t=T0 - 600).stay(GUDANG, 2)
    for i in range(4):  # leaves early
        tr.add(*offset(*GUDANG, 0, -300 - 200 * i), 30)
    replay(eng, tr.readings)
    assert len(rec.raised(MOVE)) == 1
    tr.t = T0 + 30
    tr.drive(ROUTE, 40, 30, start_m=1500, end_m=3000)
    replay(eng, tr.readings[-3:])
    resolved = rec.resolved(MOVE)
    assert len(resolved) == 1 and resolved[0].details["reason"] == "departed"


def test_not_raised_in_transit() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30)
    replay(eng, tr.readings)
    assert rec.raised(MOVE) == []
