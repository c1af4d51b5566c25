"""A handover ends the trip for detection (CONTRACT 2.6): the crate is in storage at its destination from
`at` on, so the trip is no longer overdue or silent, and leaving the place is unexpected movement."""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.phase import Phase
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, replay

ROUTE = line(GUDANG, 0, -10_000)
ARRIVE_BY = T0 + 3600


def _engine(handover_at: float | None) -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    trip = make_trip(route=ROUTE, arrive_by=ARRIVE_BY, max_stop_min=600, max_silence_min=15, updated_at=T0)
    eng.set_trips([trip.model_copy(update={"handover_at": handover_at})])
    return eng, rec


def test_a_handed_over_trip_is_not_overdue_or_silent() -> None:
    # The crate drives halfway, then the tracker falls silent; the trip never reaches its destination.
    for handover_at, expect in ((None, True), (T0 + 1200, False)):
        eng, rec = _engine(handover_at)
        tr = Track(t=T0 + 60).drive(ROUTE, 40, 60, end_m=5000)
        replay(eng, tr.readings)
        eng.tick(ARRIVE_BY + 3600)
        assert bool(rec.raised(AlertType.OVERDUE)) is expect
        assert bool(rec.raised(AlertType.SIGNAL_LOST)) is expect
        if handover_at is not None:
            assert eng.phase_of("TRK-1", handover_at - 1) == Phase.TRANSIT
            assert eng.phase_of("TRK-1", handover_at) == Phase.ARRIVED


def test_the_handover_arrives_mid_trip_through_upsert() -> None:
    eng, rec = _engine(None)
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 60, end_m=3000)
    replay(eng, tr.readings)
    ended = make_trip(route=ROUTE, arrive_by=ARRIVE_BY, max_stop_min=600, max_silence_min=15, updated_at=T0 + 1)
    eng.upsert_trip(ended.model_copy(update={"handover_at": tr.t}))
    tr.drive(ROUTE, 40, 60, start_m=3000, end_m=6000)  # carried on after it was signed for, away from the PPK
    replay(eng, tr.readings)
    eng.tick(ARRIVE_BY + 3600)
    assert rec.raised(AlertType.OVERDUE) == []
    assert len(rec.raised(AlertType.UNEXPECTED_MOVEMENT)) == 1
