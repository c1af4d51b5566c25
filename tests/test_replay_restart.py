"""The replay index survives a restart: a replay of a track recorded before the service stopped is still
recognised after it (the index is saved with the detector snapshots, on both storage backends)."""

from __future__ import annotations

import random

from alerts.model import AlertType
from anomaly.engine import DetectionEngine
from anomaly.tracks import T0, Recorder, Track, make_trip
from devices.reading import Reading
from ingest.readings import ReadingStore
from kawal.detection import SerialDetector
from kawal.trips import TripRepository
from storage import Database
from tests.test_anomaly_adversary import DAY, ROUTE, noisy_drive, noisy_stay


def _detector(db: Database, rec: Recorder) -> SerialDetector:
    engine = DetectionEngine(rec)
    engine.set_trips(
        [
            make_trip(trip_id="T-1", tracker_id="TRK-1", route=ROUTE),
            make_trip(
                trip_id="T-2", tracker_id="TRK-2", route=ROUTE, depart_after=T0 + DAY, arrive_by=T0 + DAY + 3 * 3600
            ),
        ]
    )
    return SerialDetector(engine, db, ReadingStore(db), TripRepository(db), snapshot_interval_s=60, shards=2)


def _feed(det: SerialDetector, db: Database, readings: list[Reading]) -> None:
    with db.write() as conn:
        new = ReadingStore(db).insert(conn, readings, T0 + 2 * DAY)
    det.process(new)


def test_a_replay_after_a_restart_is_still_recognised(database: Database) -> None:
    rng = random.Random(21)
    tr = Track(t=T0 - 3 * 3600)
    noisy_stay(tr, rng, ROUTE[0], 180, every_s=300)  # in the warehouse: the receiver's own noise
    tr.t = T0 + 60
    day1 = noisy_drive(tr, rng)
    rec = Recorder()
    det = _detector(database, rec)
    _feed(det, database, tr.readings)
    det.save_snapshot()  # shutdown

    rec2 = Recorder()
    det2 = _detector(database, rec2)
    det2.restore()
    fake = [
        Reading(
            tracker_id="TRK-2", ts=r.ts + DAY + 600, lat=r.lat, lon=r.lon, seq=r.seq, acc=r.acc, spd=r.spd, hdg=r.hdg
        )
        for r in day1[:40]
    ]
    _feed(det2, database, fake)
    raised = [e for e in rec2.raised(AlertType.SPOOFING_SUSPECTED)]
    assert [e.details["evidence"] for e in raised] == [["replay"]]
    assert raised[0].details["replay"]["source_tracker"] == "TRK-1"


def test_an_unreadable_index_is_left_behind(database: Database) -> None:
    rec = Recorder()
    det = _detector(database, rec)
    det.save_snapshot()
    with database.write() as c:
        c.execute(
            "INSERT INTO replay_index (id, state, saved_at) VALUES (1, ?, 0) ON CONFLICT (id) DO UPDATE"
            " SET state = excluded.state",
            (b"not a dump",),
        )
    det2 = _detector(database, Recorder())
    assert det2.restore() == 0  # the detector starts; the index refills from live fixes
