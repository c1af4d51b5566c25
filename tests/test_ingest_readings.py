"""The track (ingest/readings.py) and the tracker registry (devices/registry.py), on both backends."""

from __future__ import annotations

import pytest

from devices.decode import Rejection
from devices.reading import Reading
from devices.registry import TrackerRegistry
from ingest.readings import ReadingStore
from storage import Database

T = 1_732_060_800.0


@pytest.fixture
def db(database: Database) -> Database:
    return database


def r(ts: float, seq: int | None = None, tracker: str = "TRK-1", **kw: object) -> Reading:
    return Reading(tracker, ts, seq=seq, **kw)  # type: ignore[arg-type]


def insert(db: Database, store: ReadingStore, readings: list[Reading]) -> list[Reading]:
    with db.write() as conn:
        return store.insert(conn, readings, received_at=T + 1000)


def test_insert_returns_only_new_readings_in_input_order(db: Database) -> None:
    s = ReadingStore(db)
    first = [r(T + 1, 1, lat=1.0, lon=2.0), r(T + 2, 2), r(T + 3)]
    assert insert(db, s, first) == first
    again = [r(T + 4, 4), r(T + 2, 2), r(T + 5), r(T + 4, 4), r(T + 3), r(T + 1, 1, tracker="TRK-2")]
    new = insert(db, s, again)
    assert [(x.tracker_id, x.ts, x.seq) for x in new] == [
        ("TRK-1", T + 4, 4),
        ("TRK-1", T + 5, None),
        ("TRK-2", T + 1, 1),
    ]
    assert insert(db, s, again) == []
    assert s.count() == 6
    if db.dialect == "sqlite":  # a PostgreSQL sequence also spends ids on the conflicting inserts
        assert s.max_id() == 6


def test_same_time_different_seq_are_two_readings(db: Database) -> None:
    s = ReadingStore(db)
    assert len(insert(db, s, [r(T, 1), r(T, 2), r(T, None)])) == 3


def test_rolled_back_transaction_stores_nothing(db: Database) -> None:
    s = ReadingStore(db)
    with pytest.raises(RuntimeError), db.write() as conn:
        s.insert(conn, [r(T, 1)], T)
        raise RuntimeError("crash before commit")
    assert s.count() == 0
    assert len(insert(db, s, [r(T, 1)])) == 1


def test_round_trip_of_every_field(db: Database) -> None:
    s = ReadingStore(db)
    full = Reading(
        "TRK-1", T + 0.125, -7.5, 112.2, 9, 4.5, 30.0, 180.0, 55.0, "open", {"fw": "1.0", "n": [1]}
    )
    insert(db, s, [full])
    assert s.latest("TRK-1") == full
    assert s.after_id(0, 10) == [(1, full)]


def test_text_that_needs_escaping_round_trips(db: Database) -> None:
    s = ReadingStore(db)
    odd = {"note": "tab\there\nnew line \\ back%slash 100% 'quote' \"dq\" ?", "ü": "ñ 中"}
    one = Reading("TRK-1", T, -7.5, 112.2, 1, extra=odd)
    insert(db, s, [one])
    assert s.latest("TRK-1") == one


def test_first_of_equal_keys_in_a_batch_is_stored(db: Database) -> None:
    s = ReadingStore(db)
    first, twin = r(T, 1, lat=1.0, lon=2.0), r(T, 1, lat=3.0, lon=4.0)
    assert insert(db, s, [first, r(T + 1, 2), twin]) == [first, r(T + 1, 2)]
    assert [x.lat for x in s.track("TRK-1")] == [1.0]


def test_track_positions_only_in_time_order(db: Database) -> None:
    s = ReadingStore(db)
    insert(
        db,
        s,
        [
            r(T + 30, 3, lat=-7.3, lon=112.3),
            r(T + 10, 1, lat=-7.1, lon=112.1),
            r(T + 20, 2),
            r(T + 25, None, lat=0.0, lon=0.0),
            r(T + 40, 4, lat=-7.4, lon=112.4),
            r(T + 15, 9, tracker="X", lat=1.0, lon=1.0),
        ],
    )
    assert [x.seq for x in s.track("TRK-1")] == [1, 3, 4]
    assert [x.seq for x in s.track("TRK-1", since=T + 20)] == [3, 4]
    assert [x.seq for x in s.track("TRK-1", until=T + 30)] == [1, 3]
    assert [x.seq for x in s.track("TRK-1", limit=1)] == [1]
    assert s.track("nobody") == []


def test_latest_latest_fix_and_last_seal(db: Database) -> None:
    s = ReadingStore(db)
    assert s.latest("TRK-1") is None and s.latest_fix("TRK-1") is None and s.last_seal("TRK-1") is None
    insert(
        db,
        s,
        [
            r(T + 1, 1, lat=-7.1, lon=112.1, seal="closed"),
            r(T + 3, 3, seal="open"),  # arrived before the older reading below
            r(T + 2, 2, lat=-7.2, lon=112.2),
            r(T + 4, 4, lat=0.0, lon=0.0),  # Null Island is no fix
        ],
    )
    latest = s.latest("TRK-1")
    assert latest is not None and latest.seq == 4
    fix = s.latest_fix("TRK-1")
    assert fix is not None and fix.seq == 2
    assert s.last_seal("TRK-1") == ("open", T + 3)


def test_rejections_newest_first_and_truncated(db: Database) -> None:
    s = ReadingStore(db)
    with db.write() as conn:
        s.add_rejections(conn, "kawal/v1/A/telemetry", [Rejection("not_json", "bad", b"x" * 10_000)], T)
        s.add_rejections(
            conn,
            "kawal/v1/B/telemetry",
            [
                Rejection("bad_seal", "seal 'x'", b'{"seal":"x"}'),
                Rejection("bad_seq", "seq -1", b'{"seq":-1}'),
            ],
            T + 1,
        )
        s.add_rejections(conn, "kawal/v1/C/telemetry", [], T + 2)
    rows = s.rejected()
    assert [x["reason"] for x in rows] == ["bad_seq", "bad_seal", "not_json"]
    assert rows[0] == {
        "received_at": T + 1,
        "topic": "kawal/v1/B/telemetry",
        "reason": "bad_seq",
        "detail": "seq -1",
        "payload": b'{"seq":-1}',
    }
    assert rows[2]["payload"] == b"x" * 4096
    assert len(s.rejected(limit=1)) == 1


def test_after_id_pages_through_everything(db: Database) -> None:
    s = ReadingStore(db)
    insert(db, s, [r(T + i, i) for i in range(25)])
    seen: list[int] = []
    mark = 0
    while page := s.after_id(mark, 10):
        seen.extend(x.seq for _, x in page if x.seq is not None)
        mark = page[-1][0]
    assert seen == list(range(25))
    assert s.since_id(20, 100) == s.after_id(20, 100)


def test_registry(db: Database) -> None:
    reg = TrackerRegistry(db)
    with db.write() as conn:
        reg.ensure(conn, ["TRK-1", "TRK-2", "TRK-1"], T)
        reg.set_status(conn, "TRK-2", "offline", T + 5)
        reg.set_status(conn, "TRK-3", "online", T + 6)  # a status from a tracker never seen before
    with db.write() as conn:
        reg.ensure(conn, ["TRK-1"], T + 100)  # already known: created_at unchanged
    reg.assign("TRK-1", "JBG-KS-0001")
    reg.assign("TRK-9", "JBG-KS-0009")
    assert reg.get("TRK-1") == {
        "tracker_id": "TRK-1",
        "crate_id": "JBG-KS-0001",
        "status": None,
        "status_at": None,
        "created_at": T,
    }
    t2 = reg.get("TRK-2")
    assert t2 is not None and (t2["status"], t2["status_at"]) == ("offline", T + 5)
    assert [x["tracker_id"] for x in reg.list()] == ["TRK-1", "TRK-2", "TRK-3", "TRK-9"]
    by_crate = reg.by_crate("JBG-KS-0009")
    assert by_crate is not None and by_crate["tracker_id"] == "TRK-9"
    assert reg.get("nobody") is None
    reg.assign("TRK-1", None)
    t1 = reg.get("TRK-1")
    assert t1 is not None and t1["crate_id"] is None
    with pytest.raises(ValueError):
        reg.assign("bad id", "C")
    with pytest.raises(ValueError):
        reg.assign("TRK-1", "crate with spaces")


def test_rejected_text_is_cut_on_a_character_boundary() -> None:
    """UTF-8 text over 4 KiB stays text: the cut never splits a multi-byte character."""
    from ingest.readings import MAX_REJECTED_PAYLOAD, truncate_payload

    text = ("Kecamatan Diwek — é" * 400).encode()
    cut = truncate_payload(text)
    assert len(cut) <= MAX_REJECTED_PAYLOAD
    assert text.startswith(cut) and cut.decode("utf-8")
    binary = b"\xff" * 5000
    assert truncate_payload(binary) == binary[:MAX_REJECTED_PAYLOAD]
