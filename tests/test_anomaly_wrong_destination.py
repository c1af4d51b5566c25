"""wrong_destination: at rest > max_stop_min in another trip's origin or destination zone."""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, offset, point_at, replay
from anomaly.zones import ZoneIndex

WRONG = AlertType.WRONG_DESTINATION
STOP = AlertType.UNSCHEDULED_STOP
ROUTE = line(GUDANG, 0, -10_000)
PPS = point_at(ROUTE, 6000)  # another trip's destination lies on our road


def setup() -> tuple[DetectionEngine, Recorder]:
    rec = Recorder()
    eng = DetectionEngine(rec)
    other_route = [GUDANG, offset(*GUDANG, 800, -3000), PPS]
    eng.set_trips(
        [
            make_trip("T-1", "TRK-1", route=ROUTE),
            make_trip("T-2", "TRK-2", route=other_route, dest_radius_m=120),
        ]
    )
    return eng, rec


def test_rest_in_another_trips_destination() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=6000)
    began = tr.readings[-1].ts
    tr.stay(offset(*PPS, 30, 20), 12)
    replay(eng, tr.readings)
    raised = rec.raised(WRONG)
    assert len(raised) == 1
    ev = raised[0]
    assert ev.ts == began and ev.trip_id == "T-1"
    assert ev.details["zone"] == "destination T-2"
    assert ev.details["zones"][0] == {"zone": "destination T-2", "trip_id": "T-2", "kind": "destination"}
    assert rec.raised(STOP) == []  # one alert for one stop
    tr.drive(ROUTE, 40, 30, start_m=6000, end_m=8000)
    replay(eng, tr.readings[-6:])
    assert [e.details["reason"] for e in rec.resolved(WRONG)] == ["moved_on"]


def test_short_rest_there_is_fine() -> None:
    eng, rec = setup()
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=6000).stay(PPS, 8).drive(ROUTE, 40, 30, start_m=6000)
    replay(eng, tr.readings)
    assert rec.raised(WRONG) == [] and rec.raised(STOP) == []


def test_own_origin_shared_with_other_trips_is_not_wrong() -> None:
    eng, rec = setup()  # T-2 also starts at the Gudang
    tr = Track(t=T0 - 60).stay(GUDANG, 40)  # loading late, well past departure
    replay(eng, tr.readings)
    assert rec.raised(WRONG) == [] and rec.raised(STOP) == []


def test_zone_of_a_withdrawn_trip_is_just_a_stop() -> None:
    eng, rec = setup()
    eng.upsert_trip(make_trip("T-1", "TRK-1", route=ROUTE))
    eng.set_trips([make_trip("T-1", "TRK-1", route=ROUTE)])  # T-2 withdrawn
    tr = Track(t=T0 + 60).drive(ROUTE, 40, 30, end_m=6000).stay(PPS, 12)
    replay(eng, tr.readings)
    assert rec.raised(WRONG) == [] and len(rec.raised(STOP)) == 1


def test_zone_index_add_remove_and_query() -> None:
    idx = ZoneIndex(cell_deg=0.02, big_radius_m=5000)
    idx.add("A", "origin", *GUDANG, 150, "Gudang")
    idx.add("B", "origin", *GUDANG, 150, "Gudang")  # shared warehouse: one entry, two owners
    idx.add("C", "destination", *PPS, 100, "PPS")
    idx.add("D", "destination", -7.6, 112.3, 20_000, "wide")  # wide zones live in the short list
    assert len(idx) == 3
    near = idx.containing(*offset(*GUDANG, 140, 0))
    assert [e.name for e in near] == ["Gudang", "wide"]
    assert set(near[0].owners) == {("A", "origin"), ("B", "origin")}
    assert [e.name for e in idx.containing(*offset(*GUDANG, 170, 0), margin_m=25)] == ["Gudang", "wide"]
    assert [e.name for e in idx.containing(*offset(*GUDANG, 200, 0), margin_m=25)] == ["wide"]
    idx.remove("A", "origin", *GUDANG, 150)
    assert idx.containing(*GUDANG)[0].name == "Gudang"
    idx.remove("B", "origin", *GUDANG, 150)
    idx.remove("D", "destination", -7.6, 112.3, 20_000)
    assert idx.containing(*GUDANG) == [] and len(idx) == 1
    # a zone straddling a cell border is found from either side
    border = (-7.56, 112.24)  # exactly on a 0.02 degree grid line
    idx.add("E", "origin", *border, 150, "border")
    for east in (-100, 100):
        for north in (-100, 100):
            assert [e.name for e in idx.containing(*offset(*border, east, north))] == ["border"]
