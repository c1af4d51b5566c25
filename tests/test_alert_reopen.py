"""A condition that returns within the hold-off reopens the same alert (history `reopen`) instead of a new id:
a flapping signal or a backlog uploaded in bursts stays one alert. On both backends."""

from __future__ import annotations

from alerts.broadcast import Broadcaster
from alerts.model import AlertAction, AlertEvent, AlertType
from alerts.store import AlertStore
from anomaly.config import ALERT_REOPEN_HOLD_OFF_S
from kawal.audit import AuditLog
from kawal.metrics import Metrics
from storage import Database

T0 = 1_732_065_000.0


def _store(db: Database) -> AlertStore:
    return AlertStore(db, AuditLog(db), Broadcaster(), Metrics())


def _ev(action: AlertAction, ts: float, kind: AlertType = AlertType.SIGNAL_LOST, **kw: object) -> AlertEvent:
    return AlertEvent.model_validate(
        {"action": action, "type": kind, "tracker_id": "TRK-1", "trip_id": "T-1", "crate_id": "C-1", "ts": ts, **kw}
    )


def _count(db: Database) -> int:
    return int(db.conn().execute("SELECT count(*) FROM alerts").fetchone()[0])


def test_flapping_condition_is_one_alert(database: Database) -> None:
    store = _store(database)
    first = store.apply(_ev(AlertAction.RAISE, T0, details={"silent_s": 700}))
    assert first is not None
    # The storm seen on the wall clock: resolve and raise again every few seconds, twenty times.
    for i in range(20):
        resolved = store.apply(_ev(AlertAction.RESOLVE, T0 + 10 * i + 5))
        assert resolved is not None and resolved.status == "resolved"
        again = store.apply(_ev(AlertAction.RAISE, T0 + 10 * i + 8, details={"silent_s": 700 + i}))
        assert again is not None and again.id == first.id and again.status == "open"
    assert _count(database) == 1
    alert = store.get(first.id)
    assert alert is not None and alert.details == {"silent_s": 719}
    actions = [h.action for h in alert.history]
    assert actions[:3] == ["raise", "auto_resolve", "reopen"] and actions.count("reopen") == 20
    raised = store.metrics.registry.get_sample_value("kawal_alerts_raised_total", {"type": "signal_lost"})
    assert raised == 1.0
    audit = database.conn().execute("SELECT count(*) FROM audit WHERE action = 'alert.reopen'").fetchone()[0]
    assert int(audit) == 20


def test_return_after_the_hold_off_is_a_new_alert(database: Database) -> None:
    store = _store(database)
    first = store.apply(_ev(AlertAction.RAISE, T0))
    assert first is not None
    store.apply(_ev(AlertAction.RESOLVE, T0 + 60))
    later = store.apply(_ev(AlertAction.RAISE, T0 + 60 + ALERT_REOPEN_HOLD_OFF_S + 1))
    assert later is not None and later.id != first.id
    resolved = store.get(first.id)
    assert resolved is not None and resolved.status == "resolved"


def test_an_alert_a_person_resolved_stays_closed(database: Database) -> None:
    store = _store(database)
    first = store.apply(_ev(AlertAction.RAISE, T0))
    assert first is not None
    store.resolve(first.id, "ops-sari", "checked on site")
    again = store.apply(_ev(AlertAction.RAISE, T0 + 5))
    assert again is not None and again.id != first.id


def test_only_the_latest_alert_is_reopened_and_one_stays_unresolved(database: Database) -> None:
    store = _store(database)
    a = store.apply(_ev(AlertAction.RAISE, T0, kind=AlertType.OVERDUE))
    store.apply(_ev(AlertAction.RESOLVE, T0 + 10, kind=AlertType.OVERDUE))
    b = store.apply(_ev(AlertAction.RAISE, T0 + 20, kind=AlertType.OVERDUE))
    # Another type of the same tracker is untouched.
    other = store.apply(_ev(AlertAction.RAISE, T0 + 20, kind=AlertType.LOW_BATTERY))
    assert a is not None and b is not None and other is not None
    assert b.id == a.id and other.id != a.id
    # A raise while it is open updates it; the database holds one unresolved per (tracker, type).
    c = store.apply(_ev(AlertAction.RAISE, T0 + 30, kind=AlertType.OVERDUE, details={"late_s": 30}))
    assert c is not None and c.id == a.id
    open_rows = (
        database.conn()
        .execute("SELECT count(*) FROM alerts WHERE tracker_id = 'TRK-1' AND type = 'overdue' AND status != 'resolved'")
        .fetchone()[0]
    )
    assert int(open_rows) == 1


def test_hold_off_runs_on_the_detectors_clock(database: Database) -> None:
    """The service passes its detection clock: what counts is when the detectors saw the change, not the
    condition's own time (an overdue's ts is its trip's arrive_by, hours apart between two legs)."""
    clock = [T0]
    store = AlertStore(database, AuditLog(database), Broadcaster(), Metrics(), detection_clock=lambda: clock[0])
    leg1 = store.apply(_ev(AlertAction.RAISE, T0 - 7200, kind=AlertType.OVERDUE, trip_id="T-1"))
    assert leg1 is not None
    # A wall-clock service fed a past day: the current trip flips between two legs at every tick.
    for i in range(5):
        clock[0] += 5
        store.apply(_ev(AlertAction.RESOLVE, T0 + 3600, kind=AlertType.OVERDUE))
        clock[0] += 5
        again = store.apply(_ev(AlertAction.RAISE, T0 + 86_400 * (i % 2), kind=AlertType.OVERDUE, trip_id=f"T-{i}"))
        assert again is not None and again.id == leg1.id
    assert _count(database) == 1
    store.apply(_ev(AlertAction.RESOLVE, T0 + 3600, kind=AlertType.OVERDUE))
    clock[0] += ALERT_REOPEN_HOLD_OFF_S + 1
    later = store.apply(_ev(AlertAction.RAISE, T0 - 7200, kind=AlertType.OVERDUE))
    assert later is not None and later.id != leg1.id
