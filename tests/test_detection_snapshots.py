"""Rolling detector snapshots: a restart from slices saved at different times rebuilds every tracker's state
exactly as if nothing had stopped, on both storage backends."""

from __future__ import annotations

from anomaly.engine import DetectionEngine
from anomaly.state import FLOAT_FIELDS, INT_FIELDS, OBJ_FIELDS, encode_states
from anomaly.tracks import GUDANG, T0, Recorder, Track, line, make_trip, point_at
from devices.reading import Reading
from ingest.readings import ReadingStore
from kawal.detection import SerialDetector
from kawal.trips import TripRepository
from storage import Database

ROUTE = line(GUDANG, 0, -10_000)
SHARDS = 4


def _tracks(n: int) -> dict[str, list[Reading]]:
    """Drives, then a 12-minute stop; the last trackers start 20 minutes after the first."""
    out: dict[str, list[Reading]] = {}
    for i in range(n):
        start = T0 + 60 + i + (1200 if i >= n * 7 // 10 else 0)
        tr = Track(tracker_id=f"TRK-{i:03d}", t=start).drive(ROUTE, 40, 30, end_m=6000)
        tr.stay(point_at(ROUTE, 6000), 12)
        out[f"TRK-{i:03d}"] = tr.readings
    return out


def _detector(db: Database, rec: Recorder, n: int) -> SerialDetector:
    engine = DetectionEngine(rec)
    engine.set_trips([make_trip(trip_id=f"T-{i:03d}", tracker_id=f"TRK-{i:03d}", route=ROUTE) for i in range(n)])
    return SerialDetector(engine, db, ReadingStore(db), TripRepository(db), snapshot_interval_s=60, shards=SHARDS)


def _feed(det: SerialDetector, db: Database, readings: list[Reading]) -> None:
    with db.write() as conn:
        new = ReadingStore(db).insert(conn, readings, T0)
    det.process(new)


def _raises(*recs: Recorder) -> list[tuple[str, str, float]]:
    return sorted((str(e.type), e.tracker_id, e.ts) for rec in recs for e in rec.events if e.action == "raise")


def test_restart_from_slices_of_different_rounds_rebuilds_every_state(database: Database) -> None:
    n = 10
    stream = sorted((r for rs in _tracks(n).values() for r in rs), key=lambda r: r.ts)
    a, b = len(stream) * 4 // 10, len(stream) * 3 // 4
    ref_rec = Recorder()
    ref = DetectionEngine(ref_rec)
    ref.set_trips([make_trip(trip_id=f"T-{i:03d}", tracker_id=f"TRK-{i:03d}", route=ROUTE) for i in range(n)])

    rec = Recorder()
    det = _detector(database, rec, n)
    _feed(det, database, stream[:a])
    det.save_snapshot_slice()  # round 1 begins (the late trackers are not seen yet): slices 0 and 1
    det.save_snapshot_slice()
    _feed(det, database, stream[a:b])
    det.save_snapshot_slice()  # slices 2 and 3 of round 1, then slice 0 of round 2
    det.save_snapshot_slice()
    det.save_snapshot_slice()
    _feed(det, database, stream[b:])  # stored, in no slice: the restart must replay them
    cut = stream[b].ts
    for part in (stream[:a], stream[a:b], stream[b:]):
        ref.process(part)

    # kill -9 here: a new detector restores from the slices plus the stored readings.
    rec2 = Recorder()
    det2 = _detector(database, rec2, n)
    replayed = det2.restore()
    assert 0 < replayed < len(stream)
    assert _diff(det2.engine, ref) == []

    # Detection goes on as if nothing had stopped: the alerts raised before the kill plus those raised after
    # are the uninterrupted engine's (a replayed raise repeats one: the alert store makes it an update),
    # among them stops that began before the kill and were raised after it.
    end = stream[-1].ts + 60
    det2.engine.tick(end)
    ref.tick(end)
    assert set(_raises(rec, rec2)) == set(_raises(ref_rec))
    stops = [k for k in _raises(ref_rec) if k[0] == "unscheduled_stop"]
    assert len(stops) == n
    assert any(k[0] == "unscheduled_stop" and k[2] < cut for k in _raises(rec2))


def test_full_save_then_restart_replays_nothing(database: Database) -> None:
    tracks = _tracks(3)
    rec = Recorder()
    det = _detector(database, rec, 3)
    _feed(det, database, sorted((r for rs in tracks.values() for r in rs), key=lambda r: r.ts))
    det.save_snapshot()
    det2 = _detector(database, Recorder(), 3)
    assert det2.restore() == 0
    assert _diff(det2.engine, det.engine) == []
    assert encode_states([]) != det.engine.snapshot()


def test_an_unreadable_slice_rebuilds_from_the_stored_track(database: Database) -> None:
    tracks = _tracks(2)
    readings = sorted((r for rs in tracks.values() for r in rs), key=lambda r: r.ts)
    det = _detector(database, Recorder(), 2)
    _feed(det, database, readings)
    det.save_snapshot()
    with database.write() as c:
        c.execute("UPDATE detector_snapshots SET state = ? WHERE shard = 1", (b"garbage",))
    det2 = _detector(database, Recorder(), 2)
    assert det2.restore() == len(readings)
    assert _diff(det2.engine, det.engine) == []


def _diff(a: DetectionEngine, b: DetectionEngine) -> list[str]:
    """Every field of every tracker's state that differs, but `sched`: the next wake-up is derived again on
    restore, and an engine that ran on may hold an earlier, harmless one."""
    assert sorted(a.tracker_ids()) == sorted(b.tracker_ids())
    out = []
    for tid in a.tracker_ids():
        x, y = a.tracker_state(tid), b.tracker_state(tid)
        for f in (*FLOAT_FIELDS, *INT_FIELDS, *OBJ_FIELDS):
            if f == "sched":
                continue
            if repr(getattr(x, f)) != repr(getattr(y, f)):
                out.append(f"{tid}.{f}: {getattr(x, f)} != {getattr(y, f)}")
    return out
