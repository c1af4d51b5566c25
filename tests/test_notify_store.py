"""The notification outbox on both backends: written with the alert change, filtered per channel, escalated
once and only while open, leased to one sender at a time."""

from __future__ import annotations

import time

import pytest

from alerts.broadcast import Broadcaster
from alerts.model import AlertAction, AlertEvent, AlertType
from alerts.store import AlertStore
from kawal.audit import AuditLog
from kawal.metrics import Metrics
from kawal.trips import TripIn, TripRepository
from notify.model import ChannelIn, in_kecamatan
from notify.store import NotifyStore
from storage import Database
from tests.notify_helpers import trip_body


def _stores(db: Database) -> tuple[AlertStore, NotifyStore]:
    audit = AuditLog(db)
    alerts = AlertStore(db, audit, Broadcaster(), Metrics())
    notify = NotifyStore(db, audit)
    alerts.change_hooks.append(notify.enqueue)
    return alerts, notify


DIWEK = (-7.5952, 112.2344)  # inside kecamatan Diwek of the packaged boundaries
MOJOAGUNG = (-7.5818, 112.3549)


def _raise(
    kind: AlertType, tracker: str, trip: str | None = None, at: tuple[float, float] | None = DIWEK
) -> AlertEvent:
    lat, lon = at or (None, None)
    return AlertEvent(
        action=AlertAction.RAISE,
        type=kind,
        tracker_id=tracker,
        trip_id=trip,
        crate_id=f"C-{tracker}",
        ts=time.time(),
        lat=lat,
        lon=lon,
        details={"seal": "open"},
    )


def _webhook(**kw: object) -> ChannelIn:
    return ChannelIn.model_validate({"kind": "webhook", "url": "http://127.0.0.1:9/x", "secret": "s", **kw})


def _events(notify: NotifyStore, channel: str) -> list[tuple[str, str]]:
    return [(d.event, d.alert_id) for d in notify.pending(channel, 1000)]


def test_a_change_and_its_deliveries_commit_together_filtered_per_channel(database: Database) -> None:
    alerts, notify = _stores(database)
    trips = TripRepository(database)
    trips.put("T-DIWEK", TripIn.model_validate(trip_body("TRK-1", "C-TRK-1", "PPK Diwek")))
    trips.put("T-MOJO", TripIn.model_validate(trip_body("TRK-2", "C-TRK-2", "PPK Mojoagung")))
    now = time.time()
    notify.put("all", _webhook(), "test", now)
    notify.put("diwek", _webhook(kecamatan=["diwek"]), "test", now)
    notify.put("critical", _webhook(min_severity="critical"), "test", now)
    notify.put("stops", _webhook(types=["unscheduled_stop"]), "test", now)
    notify.put("mail", ChannelIn(kind="email", to=["ketua@example.org"]), "test", now)

    # By place: seal1 in Diwek, seal2 in Mojoagung (its trip's destination would not decide).
    seal1 = alerts.apply(_raise(AlertType.SEAL_BREAK, "TRK-1", "T-MOJO", DIWEK))
    seal2 = alerts.apply(_raise(AlertType.SEAL_BREAK, "TRK-2", "T-DIWEK", MOJOAGUNG))
    # Without a position, hence without a place: by its trip's destination, PPK Diwek.
    dev = alerts.apply(_raise(AlertType.ROUTE_DEVIATION, "TRK-1", "T-DIWEK", None))
    assert seal1 and seal2 and dev
    # A detector's refresh of the same alert is not pushed; an acknowledgement is.
    alerts.apply(_raise(AlertType.ROUTE_DEVIATION, "TRK-1", "T-DIWEK", None).model_copy(update={"details": {"d": 2}}))
    alerts.ack(seal1.id, "ops", "on it")

    assert _events(notify, "all") == [
        ("alert.raised", seal1.id),
        ("alert.raised", seal2.id),
        ("alert.raised", dev.id),
        ("alert.updated", seal1.id),
    ]
    assert _events(notify, "diwek") == [
        ("alert.raised", seal1.id),
        ("alert.raised", dev.id),
        ("alert.updated", seal1.id),
    ]
    assert _events(notify, "critical") == [
        ("alert.raised", seal1.id),
        ("alert.raised", seal2.id),
        ("alert.updated", seal1.id),
    ]
    assert _events(notify, "stops") == []
    # Email gets raises (and escalations), not updates; it keeps the destination for the message.
    mails = notify.pending("mail", 100)
    assert [(d.event, d.alert_id) for d in mails] == [
        ("alert.raised", seal1.id),
        ("alert.raised", seal2.id),
        ("alert.raised", dev.id),
    ]
    assert mails[0].context == {"destination": "PPK Mojoagung"}
    # The webhook body is the contract's, with the alert exactly as streamed; event ids are the stream's.
    first = notify.pending("all", 1)[0]
    assert first.body.startswith(f'{{"event_id":"{first.event_id}","event":"alert.raised","alert":{{')
    assert int(first.event_id) == alerts.events_after(0)[0][0]
    assert notify.depth() == {"all": 4, "diwek": 3, "critical": 3, "mail": 3}
    shown = [(d.channel, d.event, d.status) for d in notify.deliveries(seal1.id)]
    assert ("diwek", "alert.updated", "pending") in shown and len(shown) == 7


def test_delivered_and_retried_rows(database: Database) -> None:
    alerts, notify = _stores(database)
    notify.put("all", _webhook(), "test", time.time())
    a = alerts.apply(_raise(AlertType.SEAL_BREAK, "TRK-1"))
    b = alerts.apply(_raise(AlertType.LOW_BATTERY, "TRK-1"))
    assert a and b
    first, second = notify.pending("all", 10)
    notify.failed(first.id, "HTTP 500", time.time() + 60)
    again = notify.pending("all", 10)
    assert [d.id for d in again] == [first.id, second.id] and again[0].attempts == 1 and again[0].next_at > time.time()
    notify.delivered(first.id, time.time())
    assert [d.id for d in notify.pending("all", 10)] == [second.id]
    (row,) = notify.deliveries(a.id)
    assert row.status == "delivered" and row.attempts == 2 and row.last_error is None and row.delivered_at


def test_escalation_once_while_open_never_when_acknowledged(database: Database) -> None:
    alerts, notify = _stores(database)
    ch, _ = notify.put("esc", _webhook(escalate_after_min=10, types=["seal_break"]), "test", time.time() - 1)

    def alert_json(alert_id: str) -> str | None:
        a = alerts.get(alert_id)
        return None if a is None else a.model_dump_json()

    open_one = alerts.apply(_raise(AlertType.SEAL_BREAK, "TRK-1"))
    acked = alerts.apply(_raise(AlertType.SEAL_BREAK, "TRK-2"))
    other_type = alerts.apply(_raise(AlertType.LOW_BATTERY, "TRK-3"))
    assert open_one and acked and other_type
    alerts.ack(acked.id, "ops")
    now = time.time()
    assert notify.escalate(ch, now + 9 * 60, alert_json) == 0  # not yet
    assert notify.escalate(ch, now + 11 * 60, alert_json) == 1
    assert notify.escalate(ch, now + 60 * 60, alert_json) == 0  # once
    escalated = [d for d in notify.pending("esc", 100) if d.event == "alert.escalated"]
    assert [(d.alert_id, d.event_id) for d in escalated] == [(open_one.id, f"{open_one.id}:escalated")]
    assert '"status":"open"' in escalated[0].body
    # A second process scanning the same channel adds nothing.
    _, notify2 = _stores(database)
    assert notify2.escalate(ch, now + 61 * 60, alert_json) == 0


def test_lease_one_sender_per_channel(database: Database) -> None:
    _, notify = _stores(database)
    now = time.time()
    assert notify.acquire("c", "worker-a", now, 30)
    assert not notify.acquire("c", "worker-b", now + 1, 30)
    assert notify.acquire("c", "worker-a", now + 2, 30)  # renewal
    assert notify.acquire("c", "worker-b", now + 33, 30)  # a-s lease ran out
    notify.release("c", "worker-b")
    assert notify.acquire("c", "worker-a", now + 34, 30)


def test_channel_put_keeps_secret_and_delete_drops_pending(database: Database) -> None:
    alerts, notify = _stores(database)
    notify.put("hook", _webhook(secret="first"), "test", time.time())
    with pytest.raises(ValueError, match="secret"):
        notify.put("new", ChannelIn(kind="webhook", url="http://127.0.0.1:9/"), "test", time.time())
    ch, created = notify.put("hook", ChannelIn(kind="webhook", url="http://127.0.0.1:9/y"), "test", time.time())
    assert not created and ch.secret == "first" and ch.url == "http://127.0.0.1:9/y"
    a = alerts.apply(_raise(AlertType.SEAL_BREAK, "TRK-1"))
    assert a and notify.depth() == {"hook": 1}
    notify.delete("hook", "test")
    assert notify.depth() == {} and notify.channel("hook") is None


def test_kecamatan_by_place_then_destination() -> None:
    assert in_kecamatan(["Diwek"], ["DIWEK", "35.17.08"], None)
    assert in_kecamatan(["35.17.08"], ["Diwek", "35.17.08"], None)
    assert not in_kecamatan(["Diwek"], ["Mojoagung"], "PPK Diwek")  # the place wins over the destination
    assert in_kecamatan(["Diwek"], None, "PPK Diwek")
    assert in_kecamatan(["Peterongan"], None, "Kantor PPK Peterongan, Jombang")
    assert not in_kecamatan(["Diwek"], None, "PPK Diwekan")
    assert not in_kecamatan(["Diwek"], None, None)


def test_an_unreadable_channel_row_never_blocks_an_alert(database: Database) -> None:
    alerts, notify = _stores(database)
    notify.put("good", _webhook(), "test", time.time())
    with database.write() as c:
        c.execute(
            "INSERT INTO notify_channels (name, kind, body, created_at, updated_at) VALUES ('bad', 'webhook', ?, 0, 0)",
            ('{"kind": "pager"}',),
        )
    a = alerts.apply(_raise(AlertType.SEAL_BREAK, "TRK-1"))
    assert a is not None and alerts.get(a.id) is not None
    assert notify.depth() == {"good": 1}


def test_a_reopened_alert_is_pushed_as_an_update(database: Database) -> None:
    alerts, notify = _stores(database)
    notify.put("all", _webhook(), "test", time.time())
    first = alerts.apply(_raise(AlertType.SIGNAL_LOST, "TRK-1"))
    assert first is not None
    resolved = alerts.apply(_raise(AlertType.SIGNAL_LOST, "TRK-1").model_copy(update={"action": AlertAction.RESOLVE}))
    again = alerts.apply(_raise(AlertType.SIGNAL_LOST, "TRK-1"))
    assert resolved is not None and resolved.status == "resolved"
    assert again is not None and again.id == first.id and again.status == "open"
    assert [h.action for h in again.history] == ["raise", "auto_resolve", "reopen"]
    assert _events(notify, "all") == [
        ("alert.raised", first.id),
        ("alert.updated", first.id),
        ("alert.updated", first.id),
    ]
    bodies = [d.body for d in notify.pending("all", 10)]
    assert '"status":"resolved"' in bodies[1] and '"status":"open"' in bodies[2]
