"""low_battery: below 15 % raises; at least 20 % resolves (hysteresis)."""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, make_trip, replay
from devices.reading import Reading

LOW = AlertType.LOW_BATTERY


def test_raise_hysteresis_and_resolve() -> None:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.set_trips([make_trip()])
    tr = Track(t=T0 - 600)
    for bat in (30, 20, 15, 15.0):
        tr.add(*GUDANG, 60, bat=bat)
    replay(eng, tr.readings)
    assert rec.raised(LOW) == []  # 15 is not below 15
    low = tr.add(*GUDANG, 60, bat=14.5)
    for bat in (16, 14, 19.9):
        tr.add(*GUDANG, 60, bat=bat)
    replay(eng, tr.readings[-4:])
    raised = rec.raised(LOW)
    assert len(raised) == 1 and raised[0].ts == low.ts and raised[0].details["bat"] == 14.5
    assert rec.resolved(LOW) == []
    tr.add(*GUDANG, 60, bat=20)
    replay(eng, tr.readings[-1:])
    resolved = rec.resolved(LOW)
    assert len(resolved) == 1 and resolved[0].details["reason"] == "recharged"


def test_late_readings_and_missing_battery_are_ignored() -> None:
    rec = Recorder()
    eng = DetectionEngine(rec)
    eng.process([Reading("TRK-9", ts=T0, bat=80), Reading("TRK-9", ts=T0 + 60)])
    eng.process([Reading("TRK-9", ts=T0 + 30, bat=5)])  # late: an old battery level
    assert rec.raised(LOW) == []
    eng.process([Reading("TRK-9", ts=T0 + 90, bat=5)])
    raised = rec.raised(LOW)
    assert len(raised) == 1 and raised[0].trip_id is None and raised[0].lat is None
