"""The alert store: one unresolved alert per (tracker, type) under concurrency, the lifecycle, who/when,
the event log behind the live stream, the audit trail and the broadcaster."""

from __future__ import annotations

import asyncio
import threading

import pytest

from alerts.broadcast import Broadcaster, Subscription
from alerts.model import AlertAction, AlertEvent, AlertStatus, AlertType
from alerts.store import AlertConflict, AlertNotFound, AlertStore
from kawal.audit import AuditLog
from kawal.metrics import Metrics
from storage import Database, IntegrityError
from tests.backends import Backend


def _store(db: Database, broadcaster: Broadcaster | None = None) -> AlertStore:
    return AlertStore(db, AuditLog(db), broadcaster or Broadcaster(), Metrics())


def _raise(kind: AlertType = AlertType.ROUTE_DEVIATION, tracker: str = "TRK-1", **kw: object) -> AlertEvent:
    base: dict[str, object] = {
        "action": AlertAction.RAISE,
        "type": kind,
        "tracker_id": tracker,
        "trip_id": "T-1",
        "crate_id": "C-1",
        "ts": 1_732_065_000.0,
        "lat": -7.56,
        "lon": 112.23,
        "details": {"distance_m": 350},
    }
    base.update(kw)
    return AlertEvent.model_validate(base)


def _resolve(kind: AlertType, tracker: str = "TRK-1") -> AlertEvent:
    return AlertEvent(action=AlertAction.RESOLVE, type=kind, tracker_id=tracker, ts=1_732_065_600.0)


def _unresolved(store: AlertStore, tracker: str, kind: AlertType) -> int:
    row = (
        store.db.conn()
        .execute(
            "SELECT count(*) FROM alerts WHERE tracker_id = ? AND type = ? AND status != 'resolved'",
            (tracker, str(kind)),
        )
        .fetchone()
    )
    return int(row[0])


def _raised_total(store: AlertStore, kind: AlertType) -> float:
    value = store.metrics.registry.get_sample_value("kawal_alerts_raised_total", {"type": str(kind)})
    return value or 0.0


def test_raise_creates_an_open_alert(database: Database) -> None:
    store = _store(database)
    alert = store.apply(_raise(AlertType.SEAL_BREAK, details={"seal": "open"}))
    assert alert is not None
    assert (alert.type, alert.severity, alert.status) == ("seal_break", "critical", "open")
    assert (alert.trip_id, alert.crate_id, alert.tracker_id) == ("T-1", "C-1", "TRK-1")
    assert alert.ts == "2024-11-20T01:10:00.000Z"
    assert alert.raised_at.endswith("Z") and alert.details == {"seal": "open"}
    assert [(h.actor, h.action, h.status) for h in alert.history] == [("kawal", "raise", "open")]
    assert store.get(alert.id) == alert
    assert _raised_total(store, AlertType.SEAL_BREAK) == 1


def test_concurrent_raises_make_exactly_one_unresolved_alert(backend: Backend) -> None:
    """Several threads, each on its own connection, raise the same (tracker, type) at once."""
    backend.open()
    threads_n, per_thread = 8, 15
    barrier = threading.Barrier(threads_n)
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        db = backend.open()  # separate Database objects: nothing shared in Python but the store
        store = AlertStore(db, AuditLog(db), Broadcaster(), Metrics())
        barrier.wait()
        try:
            for i in range(per_thread):
                a = store.apply(_raise(AlertType.UNSCHEDULED_STOP, details={"worker": k, "i": i}))
                if a is not None:
                    with lock:
                        ids.append(a.id)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = _store(backend.open())
    assert _unresolved(store, "TRK-1", AlertType.UNSCHEDULED_STOP) == 1
    assert len(set(ids)) == 1 and len(ids) == threads_n * per_thread
    assert AuditLog(store.db).verify().ok


def test_the_database_itself_refuses_a_twin(database: Database) -> None:
    store = _store(database)
    a = store.apply(_raise())
    assert a is not None
    with pytest.raises(IntegrityError):
        store.db.conn().execute(
            "INSERT INTO alerts (id, type, severity, status, tracker_id, ts, raised_at, updated_at)"
            " VALUES ('twin', 'route_deviation', 'major', 'acknowledged', 'TRK-1', 0, 0, 0)"
        )


def test_repeat_after_ack_updates_the_same_alert(database: Database) -> None:
    store = _store(database)
    first = store.apply(_raise())
    assert first is not None
    acked = store.ack(first.id, "ops-budi", "calling the driver")
    assert acked.status == "acknowledged"
    again = store.apply(_raise(lat=-7.57, lon=112.24, details={"distance_m": 420}))
    assert again is not None and again.id == first.id
    assert again.status == "acknowledged"  # a repeat never reopens or twins it
    assert (again.lat, again.lon, again.details) == (-7.57, 112.24, {"distance_m": 420})
    assert again.ts == first.ts and again.raised_at == first.raised_at
    assert [(h.actor, h.action) for h in again.history] == [
        ("kawal", "raise"),
        ("ops-budi", "ack"),
        ("kawal", "update"),
    ]
    assert again.history[1].note == "calling the driver"
    # A repeat with nothing new changes nothing; the next real change folds into the same history entry.
    assert store.apply(_raise(lat=-7.57, lon=112.24, details={"distance_m": 420})) is None
    third = store.apply(_raise(lat=-7.58, lon=112.25, details={"distance_m": 500}))
    assert third is not None and third.history[-1].count == 2 and len(third.history) == 3
    assert _raised_total(store, AlertType.ROUTE_DEVIATION) == 1
    assert len(store.list()) == 1


def test_a_new_episode_with_the_same_details_is_recorded(database: Database) -> None:
    """A seal that opens again later is news even if the position and details are the same."""
    store = _store(database)
    a = store.apply(_raise(AlertType.SEAL_BREAK, details={"seal": "open"}))
    assert a is not None
    store.ack(a.id, "ops", None)
    b = store.apply(_raise(AlertType.SEAL_BREAK, details={"seal": "open"}, ts=1_732_066_000.0))
    assert b is not None and b.id == a.id and b.last_ts == "2024-11-20T01:26:40.000Z"
    assert b.ts == a.ts


def test_resolve_then_raise_makes_a_new_alert(database: Database) -> None:
    store = _store(database)
    a = store.apply(_raise())
    assert a is not None
    done = store.resolve(a.id, "ops-sari", "crate back on route, escorted")
    assert done.status == "resolved" and done.history[-1].actor == "ops-sari"
    b = store.apply(_raise())
    assert b is not None and b.id != a.id and b.status == "open"
    assert _raised_total(store, AlertType.ROUTE_DEVIATION) == 2
    assert {x.id for x in store.list()} == {a.id, b.id}


def test_auto_resolve_except_seal_break(database: Database) -> None:
    store = _store(database)
    dev = store.apply(_raise(AlertType.ROUTE_DEVIATION))
    seal = store.apply(_raise(AlertType.SEAL_BREAK))
    assert dev is not None and seal is not None
    resolved = store.apply(_resolve(AlertType.ROUTE_DEVIATION))
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.history[-1].actor == "kawal" and resolved.history[-1].action == "auto_resolve"
    assert store.apply(_resolve(AlertType.ROUTE_DEVIATION)) is None  # nothing left to resolve
    assert store.apply(_resolve(AlertType.SEAL_BREAK)) is None  # only a person closes a seal break
    current = store.get(seal.id)
    assert current is not None and current.status == "open"


def test_invalid_actions(database: Database) -> None:
    store = _store(database)
    with pytest.raises(AlertNotFound):
        store.ack("nope", "ops", None)
    a = store.apply(_raise())
    assert a is not None
    store.ack(a.id, "ops", "first")
    assert store.ack(a.id, "ops2", "second").history[-1].actor == "ops2"  # acknowledging again is fine
    store.resolve(a.id, "ops", "done")
    with pytest.raises(AlertConflict):
        store.ack(a.id, "ops", None)
    with pytest.raises(AlertConflict):
        store.resolve(a.id, "ops", None)


def test_list_filters_and_order(database: Database) -> None:
    t = [1000.0]

    def clock() -> float:
        t[0] += 1
        return t[0]

    db = database
    store = AlertStore(db, AuditLog(db), Broadcaster(), Metrics(), now=clock)
    a = store.apply(_raise(AlertType.SEAL_BREAK, tracker="A", trip_id="T-A", crate_id="C-A"))
    b = store.apply(_raise(AlertType.LOW_BATTERY, tracker="B", trip_id="T-B", crate_id="C-B"))
    c = store.apply(_raise(AlertType.GPS_JUMP, tracker="A", trip_id="T-A", crate_id="C-A"))
    assert a and b and c
    store.ack(b.id, "ops", None)
    assert [x.id for x in store.list()] == [c.id, b.id, a.id]
    assert [x.id for x in store.list(tracker_id="A")] == [c.id, a.id]
    assert [x.id for x in store.list(trip_id="T-B")] == [b.id]
    assert [x.id for x in store.list(crate_id="C-A", types=["seal_break"])] == [a.id]
    assert [x.id for x in store.list(types=["seal_break", "gps_jump"])] == [c.id, a.id]
    assert [x.id for x in store.list(statuses=[AlertStatus.ACKNOWLEDGED])] == [b.id]
    assert [x.id for x in store.list(since=1002.0)] == [c.id, b.id]
    assert [x.id for x in store.list(limit=1)] == [c.id]
    assert store.open_counts() == {"A": 2, "B": 1}


def test_every_change_has_an_event_and_an_audit_record(database: Database) -> None:
    store = _store(database)
    a = store.apply(_raise())
    assert a is not None
    store.apply(_raise(details={"distance_m": 999}))
    store.ack(a.id, "ops-budi", "seen")
    store.resolve(a.id, "ops-sari", "ok")
    events = store.events_after(0)
    assert [i for i, _ in events] == [1, 2, 3, 4] and store.last_event_id() == 4
    assert [e.status for _, e in events] == ["open", "open", "acknowledged", "resolved"]
    assert store.events_after(2, limit=1)[0][0] == 3
    records = store.audit.records()
    assert [(r.actor, r.action) for r in records] == [
        ("kawal", "alert.raise"),
        ("kawal", "alert.update"),
        ("ops-budi", "alert.ack"),
        ("ops-sari", "alert.resolve"),
    ]
    assert all(r.subject == f"alert:{a.id}" for r in records)
    assert records[2].data["note"] == "seen"
    assert store.audit.verify().ok


def test_broadcaster_gets_each_change_in_its_loop(database: Database) -> None:
    broadcaster = Broadcaster(queue_size=2)
    store = _store(database, broadcaster)
    subs: list[Subscription] = []

    async def scenario() -> tuple[list[int], bool]:
        sub = broadcaster.subscribe()
        subs.append(sub)
        received: list[int] = []

        def produce() -> None:
            for i in range(3):
                store.apply(_raise(tracker=f"T{i}"))

        await asyncio.get_running_loop().run_in_executor(None, produce)
        # The loop runs the call_soon_threadsafe callbacks: wait for the third one (it marks the overflow).
        for _ in range(500):
            if sub.lagged:
                break
            await asyncio.sleep(0.01)
        while not sub.queue.empty():
            item = sub.queue.get_nowait()
            assert item is not None
            received.append(item[0])
        lagged = sub.lagged  # 3 changes into a queue of 2: marked, not grown
        broadcaster.unsubscribe(sub)
        return received, lagged

    received, lagged = asyncio.run(scenario())
    assert received == [1, 2] and lagged
    assert broadcaster.client_count == 0
    # With no subscriber left, publishing is a no-op: the change is stored, nothing reaches the old client
    # (whose event loop is closed: a call into it would raise).
    after = store.apply(_raise(tracker="T9"))
    assert after is not None and after.tracker_id == "T9" and after.status == AlertStatus.OPEN
    assert subs[0].queue.empty() and subs[0].dropped == 1
    assert store.last_event_id() == 4
