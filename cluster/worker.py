"""One worker of a cluster: the bridge, the partition leases, the partition consumers and the listener.

`kawal serve` with KAWAL_CLUSTER_URL set builds one (kawal/service.py). The balancer thread checks the
leases every KAWAL_CLUSTER_REBALANCE_S: it takes the free partitions that rendezvous hashing gives this
worker, gives back those it should no longer hold (after a snapshot), and after losing its database
session drops everything until it has joined again. See docs/scaling.md for the failover time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from itertools import count

from alerts.broadcast import Broadcaster
from anomaly.engine import DetectionEngine
from cluster.bridge import Bridge
from cluster.consume import PartitionConsumers
from cluster.leases import Leases, rendezvous
from cluster.link import EngineLink
from cluster.listen import Listener
from cluster.messages import StreamMessage, wake_message
from cluster.partition import PartitionedDetector
from kawal.metrics import Metrics
from kawal.settings import Settings
from kawal.trips import TripRepository
from storage import is_url

log = logging.getLogger(__name__)

RELEASE_TIMEOUT_S = 30.0
LISTEN_TIMEOUT_S = 30.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterWorker:
    def __init__(self, settings: Settings, mqtt_url: str, metrics: Metrics) -> None:
        if not is_url(settings.db) or not settings.db.startswith(("postgresql://", "postgres://")):
            raise ValueError("cluster mode needs a shared PostgreSQL store: KAWAL_DB=postgresql://...")
        if settings.worker_id is None:
            settings = settings.model_copy(update={"worker_id": default_worker_id()})
        self.settings = settings
        self.worker_id: str = settings.worker_id or ""
        self.metrics = metrics
        self.link = EngineLink(settings)
        self.leases = Leases(settings.db, self.worker_id, settings.cluster_partitions)
        self.bridge = Bridge(settings, mqtt_url, self.link, metrics) if settings.cluster_bridge else None
        self.detector: PartitionedDetector | None = None
        self.consumers: PartitionConsumers | None = None
        self.listener: Listener | None = None
        self._submit: Callable[[StreamMessage], None] | None = None
        self._owned: set[int] = set()
        self._tokens = count(1)
        self._stop = threading.Event()
        self._balancer = threading.Thread(target=self._balance, name="kawal-balancer", daemon=True)
        self.http_url: str | None = None

    def make_detector(self, make_engine: Callable[[], DetectionEngine], trips: TripRepository) -> PartitionedDetector:
        s = self.settings
        self.detector = PartitionedDetector(
            make_engine,
            trips,
            self.leases,
            s.cluster_partitions,
            s.clock == "event",
            s.snapshot_interval_s,
            self.metrics,
        )
        return self.detector

    def start(self, submit: Callable[[StreamMessage], None], broadcaster: Broadcaster) -> None:
        assert self.detector is not None, "make_detector first"
        self._submit = submit
        self.link.start()
        self.consumers = PartitionConsumers(self.link, self.settings.cluster_stream, submit)
        self.listener = Listener(self.settings.db, broadcaster, self.detector.trip_changed, self.detector.reload_trips)
        self.listener.start()
        # Listening before holding any partition: a trip change committed after an adoption read the trips
        # must reach the engine.
        if not self.listener.listening.wait(LISTEN_TIMEOUT_S):
            raise RuntimeError(f"could not LISTEN on the database within {LISTEN_TIMEOUT_S:.0f}s")
        self.leases.join(self.http_url)
        if self.bridge is not None:
            self.bridge.start()
        self._balancer.start()

    def problem(self) -> str | None:
        """Why this worker is not ready, for /healthz (the bridge's MQTT side is the consumer's part)."""
        if not self.link.connected.is_set():
            return "connecting to the engine"
        if not self.leases.joined:
            return "joining the cluster"
        if self.listener is not None and not self.listener.listening.is_set():
            return "listening for the cluster's changes"
        return None

    def stop(self) -> None:
        """Give every partition back with a snapshot, so the others resume without a replay."""
        self._stop.set()
        self._balancer.join(10)
        if self.bridge is not None:
            self.bridge.stop()
        for part in sorted(self._owned):
            try:
                self._release(part)
            except Exception:
                log.exception("partition %d: release failed", part)
        if self.listener is not None:
            self.listener.stop()
        self.leases.leave()
        self.link.stop()

    # ---- the balancer ----------------------------------------------------------------------------

    def _balance(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.leases.joined:
                    self.leases.join(self.http_url)
                    log.info("rejoined the cluster as %s", self.worker_id)
                self._round()
            except Exception as e:
                log.warning("lost the cluster leases (%s); dropping every partition", e)
                self._drop_all()
            self._stop.wait(self.settings.cluster_rebalance_s)

    def _round(self) -> None:
        workers, holders = self.leases.view()
        for part in range(self.settings.cluster_partitions):
            if self._stop.is_set():
                return
            want = rendezvous(part, workers)
            if part in self._owned:
                if want is not None and want != self.worker_id:
                    self._release(part)
            elif want == self.worker_id and holders.get(part) is None and self.leases.try_lock(part):
                self._adopt(part)

    def _adopt(self, part: int) -> None:
        assert self.detector is not None and self.consumers is not None and self._submit is not None
        t0 = time.monotonic()
        token = next(self._tokens)
        seq, state = self.leases.load(part)
        self.detector.adopt(part, token, seq, state)
        self._owned.add(part)
        try:
            self.consumers.start(part, token, seq)
        except Exception:
            log.exception("partition %d: cannot read it from the engine; giving it back", part)
            self._release(part)
            return
        self._submit(wake_message(time.time()))
        log.info("partition %d taken in %.3fs", part, time.monotonic() - t0)

    def _release(self, part: int) -> None:
        assert self.detector is not None and self.consumers is not None and self._submit is not None
        self.consumers.stop(part)
        saved = threading.Event()
        self.detector.release(part, saved)
        self._submit(wake_message(time.time()))
        if not saved.wait(RELEASE_TIMEOUT_S):
            log.error("partition %d: no snapshot within %.0fs; the next owner replays further", part, RELEASE_TIMEOUT_S)
        self.leases.unlock(part)
        self._owned.discard(part)

    def _drop_all(self) -> None:
        if self.consumers is not None:
            self.consumers.stop_all()
        if self.detector is not None:
            self.detector.drop_all()
        self._owned.clear()
        self.leases.leave()
