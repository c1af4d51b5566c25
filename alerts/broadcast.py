"""Fan-out of alert changes to live-stream (SSE) clients.

`publish` is called from any thread (the ingest worker, API worker threads) after the change is
committed; it hands the change to each subscriber's event loop with ``call_soon_threadsafe``, one call
per loop. Each subscriber has a bounded queue: a client that falls behind is marked ``lagged`` instead of
growing memory, and its stream catches up from the ``alert_events`` table (see api/routers/alerts.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from alerts.model import Alert

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 256

# (event id, Alert JSON), or None: the broadcaster is closing and the stream should end.
StreamItem = tuple[int, str] | None


@dataclass(eq=False)
class Subscription:
    """One live-stream client. Only touched on its own event loop, except `loop` (read-only)."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[StreamItem]
    lagged: bool = False  # the queue overflowed: some changes are only in alert_events
    dropped: int = 0
    closed: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, item: StreamItem) -> None:
        if item is None:
            self.closed = True
            self._wake.set()
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.lagged = True
            self.dropped += 1
        self._wake.set()

    def drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def next(self, timeout: float | None = None) -> StreamItem | str:
        """The next queued change; "lagged" when it must catch up from the table; None when closing."""
        while True:
            if self.closed:
                return None
            if self.lagged:
                return "lagged"
            if not self.queue.empty():
                return self.queue.get_nowait()
            self._wake.clear()
            await asyncio.wait_for(self._wake.wait(), timeout)


class Broadcaster:
    """Thread-safe publisher of (event id, Alert) to asyncio subscribers with bounded queues."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._subs: dict[asyncio.AbstractEventLoop, set[Subscription]] = {}
        self._closed = False

    def subscribe(self) -> Subscription:
        """Register a client. Call on the event loop that will consume it."""
        loop = asyncio.get_running_loop()
        sub = Subscription(loop=loop, queue=asyncio.Queue(maxsize=self.queue_size))
        with self._lock:
            if self._closed:
                sub.closed = True
            else:
                self._subs.setdefault(loop, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.loop)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.loop]

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return [sub for subs in self._subs.values() for sub in subs]

    @property
    def client_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def publish(self, event_id: int, alert: Alert, data: str | None = None) -> None:
        """Send one committed change to every client. `data` is the Alert JSON if already serialised."""
        self._send((event_id, data if data is not None else alert.model_dump_json()))

    def close(self) -> None:
        """End every stream (for shutdown: open SSE connections would otherwise hold the server)."""
        with self._lock:
            self._closed = True
        self._send(None)

    def _send(self, item: StreamItem) -> None:
        with self._lock:
            groups = [(loop, tuple(subs)) for loop, subs in self._subs.items()]
        for loop, subs in groups:
            try:
                loop.call_soon_threadsafe(_deliver, subs, item)
            except RuntimeError:  # that loop has closed: its clients are gone
                with self._lock:
                    self._subs.pop(loop, None)


def _deliver(subs: tuple[Subscription, ...], item: StreamItem) -> None:
    for sub in subs:
        try:
            sub.offer(item)
        except Exception:  # one broken client must not stop the others
            log.exception("could not hand an alert change to a stream client")
