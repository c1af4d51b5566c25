"""A stalled alert-stream client (it stops reading) is dropped after its send timeout, and the other clients
keep receiving. The API runs in a real uvicorn on a socket; the stalled client is a raw socket with a small
receive buffer that never reads, so the server's writes block once the buffers between them are full."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from alerts.model import AlertAction, AlertEvent, AlertType
from tests.api_harness import Harness, SseEvent, make_harness, sse_events
from tests.servers import wait_for

SEND_TIMEOUT_S = 1.0
BACKLOG = 400  # alert changes a stalled client is sent at once (replayed): more than the buffers hold


def _raise(tracker: str) -> AlertEvent:
    return AlertEvent(
        action=AlertAction.RAISE,
        type=AlertType.SEAL_BREAK,
        tracker_id=tracker,
        trip_id=f"T-{tracker}",
        crate_id=f"C-{tracker}",
        ts=1_732_065_000.0,
        lat=-7.56,
        lon=112.23,
        details={"seal": "open"},
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    """uvicorn on a listening socket with a fixed 16 KiB send buffer (its connections inherit it): without it
    Linux grows a connection's buffer to 4 MiB, and filling that would take far more alerts than a test should
    raise. The mechanism under test (a send that blocks past the timeout) is the same either way."""
    h = make_harness(tmp_path, sse_ping_s=0.2, sse_send_timeout_s=SEND_TIMEOUT_S)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(h.app, log_level="warning", access_log=False, timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 15, "the API server")
    yield h, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_stalled_client_is_dropped_and_the_others_keep_receiving(served: tuple[Harness, str]) -> None:
    h, base_url = served
    for i in range(BACKLOG):
        h.ctx.alerts.apply(_raise(f"TRK-{i:05d}"))

    received: list[SseEvent] = []
    reading = threading.Event()
    stop = threading.Event()

    def good_client() -> None:
        with (
            httpx.Client(base_url=base_url, timeout=30) as client,
            client.stream("GET", "/api/v1/alerts/stream", headers=h.headers("viewer")) as r,
        ):
            for ev in sse_events(r):
                reading.set()
                if ev.data is not None:
                    received.append(ev)
                if stop.is_set():
                    return

    good = threading.Thread(target=good_client, daemon=True)
    good.start()
    assert reading.wait(10)
    wait_for(lambda: h.ctx.broadcaster.client_count == 1, 10, "the good client subscribed")

    host, port = base_url.removeprefix("http://").split(":")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, int(port)))
    token = h.tokens["viewer"]
    stalled.sendall(
        f"GET /api/v1/alerts/stream?last_event_id=0 HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    wait_for(lambda: h.ctx.broadcaster.client_count == 2, 10, "the stalled client subscribed")
    # It reads nothing: once the buffers are full the server's send blocks, and after the send timeout
    # the server drops it.
    wait_for(lambda: h.ctx.broadcaster.client_count == 1, 30, "the stalled client dropped")
    assert h.ctx.metrics.registry.get_sample_value("kawal_sse_clients") == 1

    # The good client still receives what happens now.
    after = h.ctx.alerts.apply(_raise("TRK-AFTER"))
    assert after is not None
    wait_for(lambda: any(after.id in (e.data or "") for e in received), 10, "the new alert at the good client")
    stop.set()

    # The stalled client had been sent part of the backlog before its buffers filled.
    stalled.setblocking(False)
    assert len(stalled.recv(65536)) > 0
    stalled.close()
    h.ctx.alerts.apply(_raise("TRK-WAKE"))  # lets the good client's loop see `stop`
    good.join(10)
