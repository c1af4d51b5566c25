"""The notification series of /metrics: deliveries, failures, and the outbox depth read at scrape time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notify.store import NotifyStore

log = logging.getLogger(__name__)


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry, store: NotifyStore) -> None:
        self.delivered = Counter(
            "kawal_notify_deliveries",
            "Notifications delivered (2xx or accepted by SMTP), by channel and event",
            ["channel", "event"],
            registry=registry,
        )
        self.failures = Counter(
            "kawal_notify_failures", "Failed delivery attempts (retried), by channel", ["channel"], registry=registry
        )
        self.latency = Histogram(
            "kawal_notify_delivery_seconds",
            "Time from an alert change to its delivery",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
            registry=registry,
        )
        with contextlib.suppress(ValueError):  # already there when a service restarts in one process
            registry.register(_OutboxDepth(store))


class _OutboxDepth(Collector):
    def __init__(self, store: NotifyStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("kawal_notify_outbox_depth", "Deliveries waiting in the outbox", labels=["channel"])
        try:
            for channel, n in sorted(self.store.depth().items()):
                g.add_metric([channel], n)
        except Exception:  # a scrape must not fail because the database is busy
            log.exception("could not read the outbox depth")
        yield g

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("kawal_notify_outbox_depth", "Deliveries waiting in the outbox", labels=["channel"])
