"""GET /api/v1/alerts/stream: live events with increasing ids, heartbeats, Last-Event-ID replay, slow clients
caught up from the table instead of growing a queue, out-of-order publishes put back in order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alerts.broadcast import Broadcaster
from alerts.model import AlertAction, AlertEvent, AlertType
from alerts.store import AlertStore
from api.app import create_app
from tests.api_harness import ALERT_FIELDS, ApiServer, Harness, SseEvent, make_harness, sse_events

PING_S = 0.2


def _raise(tracker: str, kind: AlertType = AlertType.SEAL_BREAK) -> AlertEvent:
    return AlertEvent(
        action=AlertAction.RAISE,
        type=kind,
        tracker_id=tracker,
        trip_id="T-1",
        crate_id="C-1",
        ts=1_732_065_000.0,
        lat=-7.56,
        lon=112.23,
        details={"seal": "open"},
    )


def _wait_for_clients(h: Harness, n: int) -> None:
    deadline = time.monotonic() + 10
    while h.ctx.broadcaster.client_count < n:
        assert time.monotonic() < deadline, "the stream client never subscribed"
        time.sleep(0.01)


def _collect(stream: Iterator[SseEvent], n: int, timeout: float = 10.0) -> list[SseEvent]:
    """The next `n` events (heartbeats skipped); heartbeats every PING_S keep the deadline checked."""
    out: list[SseEvent] = []
    deadline = time.monotonic() + timeout
    for ev in stream:
        if not ev.comment and ev.data is not None:
            out.append(ev)
            if len(out) == n:
                return out
        assert time.monotonic() < deadline, f"only {len(out)} of {n} events arrived"
    raise AssertionError("the stream ended")


def _open(stream: Iterator[SseEvent]) -> str:
    """The position event a stream starts with (no Last-Event-ID): only an id. Once it arrived, the
    client is subscribed and every later change reaches it."""
    for ev in stream:
        if not ev.comment:
            assert ev.data is None and ev.id is not None, ev
            return ev.id
    raise AssertionError("the stream ended")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Harness, httpx.Client]]:
    h = make_harness(tmp_path, sse_ping_s=PING_S)
    with ApiServer(h.app) as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield h, client


def test_live_events_and_heartbeats(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    h.ctx.alerts.apply(_raise("TRK-OLD"))  # before the client connects: not sent without Last-Event-ID
    with client.stream("GET", "/api/v1/alerts/stream", headers=h.headers("viewer")) as r:
        evs = sse_events(r)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert _open(evs) == "1"  # the position: the change made before connecting is not sent
        assert next(evs).comment  # then heartbeats while nothing happens
        raised = h.ctx.alerts.apply(_raise("TRK-1"))
        assert raised is not None
        h.ctx.alerts.ack(raised.id, "ops-budi", "on it")
        events = _collect(evs, 2)
    assert [int(e.id or 0) for e in events] == [2, 3]
    alerts = [json.loads(e.data or "") for e in events]
    assert (
        alerts[0]["id"] == raised.id and alerts[0]["type"] == "seal_break" and alerts[0]["status"] == "open"
    )
    assert alerts[1]["status"] == "acknowledged" and alerts[1]["history"][-1]["actor"] == "ops-budi"
    assert set(alerts[0]) >= ALERT_FIELDS
    _wait_gone(h)  # the disconnect unsubscribes the client


def test_reconnect_with_last_event_id_gets_what_it_missed(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    with client.stream("GET", "/api/v1/alerts/stream", headers=h.headers("viewer")) as r:
        evs = sse_events(r)
        assert _open(evs) == "0"
        a = h.ctx.alerts.apply(_raise("TRK-1"))
        assert a is not None
        (seen,) = _collect(evs, 1)
    assert seen.id == "1"
    _wait_gone(h)
    # While disconnected: three changes.
    b = h.ctx.alerts.apply(_raise("TRK-2", AlertType.ROUTE_DEVIATION))
    h.ctx.alerts.ack(a.id, "ops", None)
    assert b is not None
    h.ctx.alerts.resolve(b.id, "ops", "back on route")
    headers = {**h.headers("viewer"), "Last-Event-ID": seen.id}
    with client.stream("GET", "/api/v1/alerts/stream", headers=headers) as r:
        evs = sse_events(r)
        missed = _collect(evs, 3)
        _wait_for_clients(h, 1)
        h.ctx.alerts.apply(_raise("TRK-3", AlertType.LOW_BATTERY))
        (live,) = _collect(evs, 1)
    assert [e.id for e in missed] == ["2", "3", "4"]
    assert [json.loads(e.data or "")["status"] for e in missed] == ["open", "acknowledged", "resolved"]
    assert live.id == "5" and json.loads(live.data or "")["tracker_id"] == "TRK-3"
    # The query parameter does the same for clients that cannot set headers; ids never given start from now.
    with client.stream(
        "GET", "/api/v1/alerts/stream", params={"last_event_id": 3}, headers=h.headers("viewer")
    ) as r:
        evs = sse_events(r)
        assert [e.id for e in _collect(evs, 2)] == ["4", "5"]
    _wait_gone(h)
    with client.stream(
        "GET", "/api/v1/alerts/stream", headers={**h.headers("viewer"), "Last-Event-ID": "999"}
    ) as r:
        evs = sse_events(r)
        assert _open(evs) == "5"  # an id this server never gave: the stream starts from now
        h.ctx.alerts.apply(_raise("TRK-4", AlertType.LOW_BATTERY))
        assert [e.id for e in _collect(evs, 1)] == ["6"]


def _wait_gone(h: Harness) -> None:
    deadline = time.monotonic() + 10
    while h.ctx.broadcaster.client_count:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_slow_client_is_caught_up_from_the_table(tmp_path: Path) -> None:
    """The client's queue holds 2 changes; 40 arrive while its loop is busy. It still gets all 40, in order,
    and the queue never held more than 2."""
    h = make_harness(tmp_path, sse_ping_s=PING_S)
    broadcaster = Broadcaster(queue_size=2)
    c = h.ctx
    h.ctx.broadcaster = broadcaster
    h.ctx.alerts = AlertStore(c.db, c.alerts.audit, broadcaster, c.metrics)
    h.app = create_app(h.ctx, sse_ping_s=PING_S)
    with (
        ApiServer(h.app) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
        client.stream("GET", "/api/v1/alerts/stream", headers=h.headers("viewer")) as r,
    ):
        evs = sse_events(r)
        assert _open(evs) == "0"
        (sub,) = broadcaster.subscriptions()
        busy = threading.Event()

        def block_loop() -> None:
            busy.set()
            time.sleep(1.0)

        sub.loop.call_soon_threadsafe(block_loop)
        assert busy.wait(5)
        for i in range(40):
            h.ctx.alerts.apply(_raise(f"TRK-{i}"))
        events = _collect(evs, 40)
        assert sub.dropped > 0 and sub.queue.maxsize == 2
    assert [int(e.id or 0) for e in events] == list(range(1, 41))
    assert [json.loads(e.data or "")["tracker_id"] for e in events] == [f"TRK-{i}" for i in range(40)]


def test_out_of_order_publishes_are_put_back_in_order(api: tuple[Harness, httpx.Client]) -> None:
    """Two threads commit changes 1 and 2 but publish 2 first: the client still sees 1 then 2, once each."""
    h, client = api
    silent = AlertStore(
        h.ctx.db, h.ctx.alerts.audit, Broadcaster(), h.ctx.metrics
    )  # commits, publishes nowhere
    with client.stream("GET", "/api/v1/alerts/stream", headers=h.headers("viewer")) as r:
        evs = sse_events(r)
        _open(evs)
        first = silent.apply(_raise("TRK-1"))
        second = silent.apply(_raise("TRK-2"))
        assert first is not None and second is not None
        h.ctx.broadcaster.publish(2, second)
        h.ctx.broadcaster.publish(1, first)
        h.ctx.alerts.apply(_raise("TRK-3"))
        events = _collect(evs, 3)
    assert [e.id for e in events] == ["1", "2", "3"]
    assert [json.loads(e.data or "")["tracker_id"] for e in events] == ["TRK-1", "TRK-2", "TRK-3"]


def test_close_ends_every_stream(api: tuple[Harness, httpx.Client]) -> None:
    h, client = api
    with client.stream("GET", "/api/v1/alerts/stream", headers=h.headers("viewer")) as r:
        evs = sse_events(r)
        _open(evs)
        h.ctx.broadcaster.close()
        rest = [ev for ev in evs if not ev.comment]  # ends instead of waiting for more
    assert rest == []
    assert h.ctx.broadcaster.client_count == 0
