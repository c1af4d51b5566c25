"""The dispatcher: one worker thread per channel sends that channel's outbox in id order.

- Per channel, so a slow or dead receiver delays only its own deliveries; ingest never waits on it (the
  outbox rows are written in the alert's transaction and sent from here).
- In order: a channel sends its oldest pending delivery first and retries it (exponential backoff with
  jitter, kawal/backoff.py) before any later one, so events of one alert arrive in order.
- Bounded memory: the outbox is read a page at a time, however long a receiver was down.
- Several processes on one database (cluster mode): a channel is sent by the holder of its lease
  (`notify_leases`), renewed before every send; a process that dies loses it after LEASE_S. A delivery
  cut off mid-send is sent again: receivers de-duplicate by event_id.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from kawal.backoff import backoff_delay
from kawal.settings import Settings
from notify import mail, webhook
from notify.metrics import NotifyMetrics
from notify.model import Channel
from notify.store import Delivery, NotifyStore
from notify.webhook import DeliveryError

log = logging.getLogger(__name__)

PAGE = 50
LEASE_S = 30.0
CHANNELS_POLL_S = 1.0
ESCALATION_SCAN_S = 1.0


class Dispatcher:
    def __init__(
        self,
        store: NotifyStore,
        settings: Settings,
        metrics: NotifyMetrics,
        owner: str,
        alert_json: Callable[[str], str | None],
        public_url: str,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.owner = owner
        self.alert_json = alert_json
        self.public_url = public_url
        self._stop = threading.Event()
        self._workers: dict[str, _ChannelWorker] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kawal-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every worker; one blocked in a send is left to finish as a daemon (its delivery stays pending
        and is sent again after the restart)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for w in list(self._workers.values()):
            w.stop()
        for w in list(self._workers.values()):
            w.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        """Start a worker per channel, and stop the workers of removed channels."""
        while not self._stop.is_set():
            try:
                names = {ch.name for ch in self.store.channels()}
                for name in names - self._workers.keys():
                    self._workers[name] = _ChannelWorker(self, name)
                    self._workers[name].start()
                for name in list(self._workers):
                    if name not in names or not self._workers[name].is_alive():
                        self._workers.pop(name).stop()
            except Exception:
                log.exception("notification dispatcher: could not read the channels")
            self._stop.wait(CHANNELS_POLL_S)

    def send(self, ch: Channel, d: Delivery) -> None:
        deliver(ch, d, self.settings, self.public_url)


def deliver(ch: Channel, d: Delivery, s: Settings, public_url: str) -> None:
    """Deliver one event to its channel; DeliveryError when it did not go through."""
    if ch.kind == "webhook":
        assert ch.url is not None
        webhook.post(ch.url, ch.secret or "", d.event_id, d.event, d.body, s.notify_timeout_s)
        return
    if s.smtp_url is None:
        raise DeliveryError("KAWAL_SMTP_URL is not set")
    alert = json.loads(d.body)["alert"]
    msg = mail.compose(
        d.event,
        alert,
        d.context.get("destination"),
        public_url,
        s.smtp_from,
        list(ch.to or []),
        ch.escalate_after_min,
    )
    msg["X-Kawal-Event-Id"] = d.event_id
    mail.send(s.smtp_url.get_secret_value(), msg, s.notify_timeout_s)


class _ChannelWorker(threading.Thread):
    def __init__(self, parent: Dispatcher, name: str) -> None:
        super().__init__(name=f"kawal-notify-{name}", daemon=True)
        self.parent = parent
        self.channel = name
        self._stop_event = threading.Event()
        self._last_scan = 0.0
        self._held = False
        self._lease_until = 0.0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        p = self.parent
        try:
            while not self._stop_event.is_set() and not p._stop.is_set():
                try:
                    self._round()
                except Exception:
                    log.exception("notification channel %s: unexpected error", self.channel)
                    self._stop_event.wait(1.0)
        finally:
            if self._held:
                try:
                    p.store.release(self.channel, p.owner)
                except Exception:
                    log.exception("could not release the lease of channel %s", self.channel)

    def _hold(self, now: float) -> bool:
        """Whether this process may send the channel now: renews the lease once half of it is used, so an
        idle channel costs a write every LEASE_S/2, not one per poll."""
        if now < self._lease_until - LEASE_S / 2:
            return True
        self._held = self.parent.store.acquire(self.channel, self.parent.owner, now, LEASE_S)
        self._lease_until = now + LEASE_S if self._held else 0.0
        return self._held

    def _round(self) -> None:
        p, s = self.parent, self.parent.settings
        ch = p.store.channel(self.channel)
        if ch is None:
            self._stop_event.set()
            return
        if not self._hold(time.time()):
            self._stop_event.wait(LEASE_S / 3)  # another process sends this channel
            return
        if ch.escalate_after_min is not None and time.monotonic() - self._last_scan >= ESCALATION_SCAN_S:
            self._last_scan = time.monotonic()
            n = p.store.escalate(ch, time.time(), p.alert_json)
            if n:
                log.info("channel %s: %d alert(s) escalated", ch.name, n)
        batch = p.store.pending(self.channel, PAGE)
        if not batch:
            self._stop_event.wait(s.notify_poll_s)
            return
        for d in batch:
            now = time.time()
            if d.next_at > now:  # the oldest is waiting for its retry; later ones wait behind it
                self._stop_event.wait(min(d.next_at - now, 1.0))
                return
            if self._stop_event.is_set() or not self._hold(now):
                return
            try:
                p.send(ch, d)
            except DeliveryError as e:
                attempts = d.attempts + 1
                delay = backoff_delay(attempts, s.notify_retry_min_s, s.notify_retry_max_s)
                p.store.failed(d.id, str(e), time.time() + delay)
                p.metrics.failures.labels(channel=ch.name).inc()
                log.warning(
                    "channel %s: delivery of %s %s failed (%s, attempt %d); retrying in %.1fs",
                    ch.name,
                    d.event,
                    d.event_id,
                    e,
                    attempts,
                    delay,
                )
                return
            done = time.time()
            p.store.delivered(d.id, done)
            p.metrics.delivered.labels(channel=ch.name, event=d.event).inc()
            p.metrics.latency.observe(max(0.0, done - d.created_at))
