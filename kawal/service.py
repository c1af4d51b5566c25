"""Builds every stage and runs them: MQTT -> decode -> store + detect -> alerts -> API and dashboard.

The MQTT client runs in a child process (ingest/front.py; KAWAL_MQTT_PROCESS=false keeps it here) whose
relay thread only enqueues. Threads: one ingest worker (decode, store, detect, ack), the InfluxDB forwarder
(optional), the notification workers and uvicorn for the API. Detection state is touched only under
`SerialDetector`'s lock, so the API can hand it trip changes safely.
"""

from __future__ import annotations

import errno
import gc
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from alerts.broadcast import Broadcaster
from alerts.store import AlertStore
from anomaly.config import DetectionConfig
from anomaly.engine import DetectionEngine
from api.app import create_app
from api.auth import TokenStore
from api.deps import AppContext
from devices.registry import TrackerRegistry
from ingest.flood import FloodGuard
from ingest.front import MqttFront
from ingest.influx import InfluxForwarder
from ingest.mqtt import Consumer, MqttConsumer
from ingest.pipeline import IngestPipeline
from ingest.readings import ReadingStore
from ingest.seqgaps import SeqGaps
from kawal.audit import AuditLog
from kawal.broker import EmbeddedBroker
from kawal.clock import Clock, make_clock
from kawal.detection import SerialDetector
from kawal.gcpause import gc_paused
from kawal.health import Health
from kawal.metrics import Metrics
from kawal.places import load_places
from kawal.settings import Settings
from kawal.trips import Trip, TripRepository
from notify.dispatch import Dispatcher
from notify.metrics import NotifyMetrics
from notify.store import NotifyStore
from storage import Database, is_url, open_database

if TYPE_CHECKING:
    from cluster.forward import ClusterInflux
    from cluster.worker import ClusterWorker

log = logging.getLogger(__name__)


def silent_broadcaster() -> Broadcaster:
    from cluster.listen import SilentBroadcaster

    return SilentBroadcaster()


class PortInUse(Exception):
    """The API's port is taken: said in one line, before anything else is started."""


def listen_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound before the stores and the broker are touched, so a port in use
    fails first and leaves nothing behind (no broker session, no database)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
            0
        ]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is in use (KAWAL_HTTP_PORT / --http-port)") from e
        raise PortInUse(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.set_inheritable(True)
    return sock


class Service:
    def __init__(self, settings: Settings, workdir: Path | None = None) -> None:
        self.settings = settings
        self.workdir = workdir
        self.metrics = Metrics()
        self.health = Health(settings.health_max_lag_s, settings.health_max_queue)
        self.clock: Clock = make_clock(settings.clock)
        self.mqtt_url: str | None = settings.mqtt_url
        self.broker: EmbeddedBroker | None = None
        self.consumer: Consumer | None = None
        self.pipeline: IngestPipeline | None = None
        self.influx: InfluxForwarder | ClusterInflux | None = None
        self.cluster: ClusterWorker | None = None
        self.detector: SerialDetector | None = None
        self.broadcaster: Broadcaster | None = None
        self.dispatcher: Dispatcher | None = None
        self._server: uvicorn.Server | None = None
        self._server_thread: threading.Thread | None = None
        self._http_socket: socket.socket | None = None

    @property
    def http_url(self) -> str:
        host = self.settings.http_host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{self.settings.http_port}"

    def start(self) -> None:
        s = self.settings
        self._http_socket = listen_socket(s.http_host, s.http_port)
        db = open_database(s.db, check=s.db_check_at_start)  # a damaged SQLite file is refused, with the way back
        self.db = db
        readings = ReadingStore(db)
        registry = TrackerRegistry(db)
        trips = TripRepository(db)
        audit = AuditLog(db)
        broadcaster = Broadcaster()
        self.broadcaster = broadcaster
        # In cluster mode the streams get every change of the cluster through NOTIFY (cluster/listen.py).
        alert_broadcaster = silent_broadcaster() if s.cluster_url else broadcaster
        alerts = AlertStore(
            db, audit, alert_broadcaster, self.metrics, places=load_places(s.boundaries), detection_clock=self.clock.now
        )
        if filled := alerts.fill_places():
            log.info("computed the place of %d stored alerts", filled)
        # Notifications (CONTRACT 2.7): each alert change writes its deliveries in its own transaction.
        notify_store = NotifyStore(db, audit)
        alerts.change_hooks.append(notify_store.enqueue)
        # A tracker clock jumping ahead is only recognisable against wall time (see DetectionConfig).
        config = DetectionConfig(clock=s.clock, future_tolerance_s=3600.0 if s.clock == "wall" else 0.0)
        if s.cluster_url:
            on_trip_changed = self._start_cluster(db, registry, trips, alerts, broadcaster, config)
        else:
            on_trip_changed = self._start_one_process(db, readings, registry, trips, alerts, config)

        ctx = AppContext(
            settings=s,
            db=db,
            metrics=self.metrics,
            trips=trips,
            alerts=alerts,
            broadcaster=broadcaster,
            readings=readings,
            registry=registry,
            tokens=TokenStore(db, s.admin_token.get_secret_value() if s.admin_token else None),
            health=self.health,
            on_trip_changed=on_trip_changed,
            clock=self.clock,
        )
        app = create_app(ctx)
        http_config = uvicorn.Config(app, host=s.http_host, port=s.http_port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(http_config)
        server, sockets = self._server, [self._http_socket]
        self._server_thread = threading.Thread(
            target=lambda: server.run(sockets=sockets), name="kawal-http", daemon=True
        )
        self._server_thread.start()

        def alert_json(alert_id: str) -> str | None:
            alert = alerts.get(alert_id)
            return None if alert is None else alert.model_dump_json()

        # Named by host and MQTT client id (unique per live process), so a restarted process takes its
        # channels' leases back at once.
        self.dispatcher = Dispatcher(
            notify_store,
            s,
            NotifyMetrics(self.metrics.registry, notify_store),
            owner=f"{socket.gethostname()}/{s.worker_id or s.mqtt_client_id}",
            alert_json=alert_json,
            public_url=s.public_url or self.http_url,
        )
        self.dispatcher.start()

    def _start_one_process(
        self,
        db: Database,
        readings: ReadingStore,
        registry: TrackerRegistry,
        trips: TripRepository,
        alerts: AlertStore,
        config: DetectionConfig,
    ) -> Callable[[Trip], None]:
        """One process: the MQTT consumer feeds the pipeline, one engine detects every tracker."""
        s = self.settings
        engine = DetectionEngine(sink=alerts.apply, config=config)
        started = time.perf_counter()
        with gc_paused():  # start only, before any other thread runs (see kawal/gcpause.py)
            trip_list = trips.list()
            engine.set_trips(trip_list)
        log.info("%d trips loaded into detection in %.1fs", len(trip_list), time.perf_counter() - started)
        detector = SerialDetector(engine, db, readings, trips, s.snapshot_interval_s)
        self.detector = detector
        restore_started = time.perf_counter()
        replayed = detector.restore()
        log.info(
            "detection state restored in %.1fs (%d trackers, %d stored readings replayed)",
            time.perf_counter() - restore_started,
            detector.engine.trackers,
            replayed,
        )
        # The trips and states loaded so far live as long as the service: kept out of the cyclic collector's
        # full passes, which otherwise walk them all (about 220 ms at 20,000 trackers) in the ingest worker.
        gc.freeze()
        self.health.stores_open = True

        if self.mqtt_url is None:
            # The embedded broker keeps its sessions next to the database (a PostgreSQL store: in the working
            # folder), so they outlive a restart.
            default = Path("kawal.broker") if is_url(s.db) else Path(s.db).parent / f"{Path(s.db).name}.broker"
            workdir = self.workdir or default
            self.broker = EmbeddedBroker(s, workdir)
            self.mqtt_url = self.broker.start()
            log.info("embedded %s broker on %s", self.broker.kind, self.mqtt_url)
            if s.mqtt_protocol == "auto" and self.broker.protocol == "3.1.1":
                # amqtt speaks only 3.1.1: skip the MQTT 5 attempt and its fallback delay.
                s = s.model_copy(update={"mqtt_protocol": "3.1.1"})

        gaps = SeqGaps(db, readings, self.metrics)
        if replayed_gaps := gaps.restore():
            log.info("counted seq gaps in %d stored readings", replayed_gaps)
        consumer_class = MqttFront if s.mqtt_process else MqttConsumer
        self.consumer = consumer_class(s, self.mqtt_url, self._on_message, self.metrics)
        self.pipeline = IngestPipeline(
            db,
            readings,
            registry,
            detector,
            self.clock,
            self.metrics,
            self.consumer.ack,
            tick_interval_s=s.tick_interval_s,
            flood=FloodGuard(s.flood_rate_per_s, s.flood_burst, s.flood_drop, self.metrics),
            gaps=gaps,
        )
        self.health.consumer = self.consumer
        self.health.pipeline = self.pipeline
        self.pipeline.start()
        self.consumer.start()

        if s.influx_url:
            self.influx = InfluxForwarder(db, s, self.metrics)
            self.influx.start()

        return detector.upsert_trip

    def _start_cluster(
        self,
        db: Database,
        registry: TrackerRegistry,
        trips: TripRepository,
        alerts: AlertStore,
        broadcaster: Broadcaster,
        config: DetectionConfig,
    ) -> Callable[[Trip], None]:
        """Cluster mode (CONTRACT 3.1): this process is one worker (cluster/worker.py)."""
        from cluster.forward import ClusterInflux, FencedReadingStore
        from cluster.worker import ClusterWorker

        s = self.settings
        if self.mqtt_url is None:
            raise ValueError("cluster mode needs the trackers' broker: KAWAL_MQTT_URL")
        alerts.replay_guard = True
        cluster = ClusterWorker(s, self.mqtt_url, self.metrics)
        cluster.http_url = self.http_url
        self.cluster = cluster
        detector = cluster.make_detector(lambda: DetectionEngine(sink=alerts.apply, config=config), trips)
        self.pipeline = IngestPipeline(
            db,
            FencedReadingStore(db),
            registry,
            detector,
            self.clock,
            self.metrics,
            lambda m: None,  # the stream needs no acknowledgement: progress is kept with the snapshots
            tick_interval_s=s.tick_interval_s,
            ack_many=lambda ms: None,
            detect_batch=detector.detect_batch,
        )
        self.health.stores_open = True
        self.health.pipeline = self.pipeline
        self.pipeline.start()
        cluster.start(self.pipeline.submit, broadcaster)
        self.health.checks.append(cluster.problem)
        if cluster.bridge is not None:
            self.health.consumer = cluster.bridge.consumer
        else:
            self.health.needs_consumer = False
        if s.influx_url:
            self.influx = ClusterInflux(db, s, self.metrics, cluster.leases)
            self.influx.start()
        # Trip changes reach the partition's owner through NOTIFY, whichever worker took them.
        return lambda trip: None

    def _on_message(self, msg: object) -> None:
        assert self.pipeline is not None
        self.pipeline.submit(msg)  # type: ignore[arg-type]

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Until the API answers (it does before the broker is reached: /healthz then says why not ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server is not None and self._server.started:
                return
            if self.failed():
                raise RuntimeError("the API server stopped while starting; see the log")
            time.sleep(0.05)
        raise TimeoutError(f"the API did not start within {timeout}s")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health.ready() and self._server is not None and self._server.started:
                return
            if self.failed():
                raise RuntimeError("a component stopped while starting")
            time.sleep(0.05)
        raise TimeoutError(f"Kawal not ready after {timeout}s (broker {self.mqtt_url})")

    def failed(self) -> bool:
        return self._server_thread is not None and not self._server_thread.is_alive()

    def stop(self) -> None:
        """Stop taking messages, finish what was received, keep the detector state, then close."""
        if self.cluster is not None:
            self.cluster.stop()  # gives the partitions back with snapshots (the pipeline writes them)
        # Drain first, while still connected, so what was received is stored and acknowledged; anything
        # that arrives later is redelivered by the broker on the next start.
        if self.pipeline is not None:
            self.pipeline.stop(drain=True)
        if self.consumer is not None:
            self.consumer.stop()
        if self.detector is not None and self.health.stores_open:
            try:
                self.detector.save_snapshot()
            except Exception:
                log.exception("could not save the detector snapshot")
        if self.influx is not None:
            self.influx.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.broadcaster is not None:
            self.broadcaster.close()  # ends open alert streams, which uvicorn would otherwise wait for
        if self._server is not None:
            self._server.should_exit = True
        if self._server_thread is not None:
            self._server_thread.join(10)
        if self._http_socket is not None:
            self._http_socket.close()
        if self.broker is not None:
            self.broker.stop()
