"""The dispatcher on both backends, in process: a backlog of several pages reaches a receiver that comes
back, in order and complete; two processes sharing one database send each event once (cluster mode)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.broadcast import Broadcaster
from alerts.model import AlertAction, AlertEvent, AlertType
from alerts.store import AlertStore
from kawal.audit import AuditLog
from kawal.metrics import Metrics
from kawal.settings import Settings
from notify.dispatch import PAGE, Dispatcher
from notify.metrics import NotifyMetrics
from notify.model import ChannelIn
from notify.store import NotifyStore
from storage import Database, open_database
from tests.backends import Backend
from tests.notify_helpers import Receiver, verify
from tests.servers import wait_for

SETTINGS = Settings.model_validate({"notify_poll_s": 0.05, "notify_retry_min_s": 0.1, "notify_retry_max_s": 0.5})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _dispatcher(db: Database, owner: str) -> Dispatcher:
    store = NotifyStore(db)
    return Dispatcher(store, SETTINGS, NotifyMetrics(Metrics().registry, store), owner, lambda _: None, "http://x")


def _backlog(db: Database, n: int, channel: str = "hook") -> list[str]:
    """n alert changes (a raise and an acknowledgement each for n/2 trackers); their event ids in order."""
    alerts = AlertStore(db, AuditLog(db), Broadcaster(), Metrics())
    alerts.change_hooks.append(NotifyStore(db).enqueue)
    for i in range(n // 2):
        a = alerts.apply(AlertEvent(action=AlertAction.RAISE, type=AlertType.SEAL_BREAK, tracker_id=f"T{i}", ts=1e9))
        assert a is not None
        alerts.ack(a.id, "ops")
    return [d.event_id for d in NotifyStore(db).pending(channel, 10 * n)]


def test_a_backlog_of_several_pages_arrives_complete_and_in_order(backend: Backend, receiver: Receiver) -> None:
    db = backend.open()
    NotifyStore(db).put("hook", ChannelIn(kind="webhook", url=receiver.url, secret="k"), "t", time.time())
    expected = _backlog(db, 3 * PAGE + 10)
    assert len(expected) == 3 * PAGE + 10
    d = _dispatcher(db, "worker-a")
    d.start()
    try:
        wait_for(
            lambda: receiver.attempts == 0 and NotifyStore(db).depth() == {"hook": len(expected)},
            5,
            "the receiver still down",
        )
        time.sleep(1.0)  # several failed attempts against a closed port
        receiver.start()
        wait_for(lambda: len(receiver.events()) >= len(expected), 60, "the whole backlog")
        got = receiver.events()
        assert [g.event_id for g in got] == expected  # in order, complete, no repeats
        assert all(verify("k", g.body, g.headers["X-Kawal-Signature"]) for g in got[:5])
        wait_for(lambda: NotifyStore(db).depth() == {}, 10, "the outbox drained")
    finally:
        d.stop()


def test_two_processes_on_one_database_send_each_event_once(backend: Backend, receiver: Receiver) -> None:
    db = backend.open()
    receiver.start()
    NotifyStore(db).put("hook", ChannelIn(kind="webhook", url=receiver.url, secret="k"), "t", time.time())
    expected = _backlog(db, 2 * PAGE)
    workers = [_dispatcher(backend.open(), f"worker-{i}") for i in range(2)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: NotifyStore(db).depth() == {}, 60, "the outbox drained")
        time.sleep(0.5)
        assert [g.event_id for g in receiver.events()] == expected
    finally:
        for w in workers:
            w.stop()


def test_a_slow_receiver_does_not_delay_another_channel(tmp_path: Path) -> None:
    db = open_database(tmp_path / "kawal.db")
    slow, fast = Receiver(delay_s=4.0).start(), Receiver().start()
    try:
        for name, r in (("slow", slow), ("fast", fast)):
            NotifyStore(db).put(name, ChannelIn(kind="webhook", url=r.url, secret="k"), "t", time.time())
        expected = _backlog(db, 6, "fast")
        d = _dispatcher(db, "worker-a")
        d.start()
        try:
            wait_for(lambda: len(fast.events()) == len(expected), 10, "every event on the fast channel")
            assert len(slow.events()) <= 1  # still busy with its first
            assert [g.event_id for g in fast.events()] == expected
        finally:
            d.stop(timeout=1.0)
    finally:
        slow.stop()
        fast.stop()
