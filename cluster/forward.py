"""The InfluxDB output of a cluster: one forwarder, run by whichever worker holds the `influx` role lock.

Workers store readings side by side, so a reading id can commit after a higher one; a forwarder that
moved its mark past the higher id would never write the lower one. Every insert transaction therefore
holds a shared advisory lock (FencedReadingStore), and the forwarder reads its upper bound under the
exclusive one: once it has it, every insert that had taken an id below that bound has committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from cluster.leases import LOCK_ROLE, Leases
from devices.reading import Reading
from ingest.influx import InfluxForwarder
from ingest.readings import ReadingStore
from kawal.metrics import Metrics
from kawal.settings import Settings
from storage import Connection, Database

log = logging.getLogger(__name__)

INSERTS_KEY = 2  # (LOCK_ROLE, 2): held shared by every readings insert, exclusive by the bound's reader
ROLE_POLL_S = 1.0


class FencedReadingStore(ReadingStore):
    def insert(self, conn: Connection, readings: Sequence[Reading], received_at: float) -> list[Reading]:
        if readings:
            conn.execute("SELECT pg_advisory_xact_lock_shared(?, ?)", (LOCK_ROLE, INSERTS_KEY))
        return super().insert(conn, readings, received_at)


class _BoundedForwarder(InfluxForwarder):
    def visible_upto(self) -> int:
        with self.db.write() as c:
            c.execute("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_ROLE, INSERTS_KEY))
            return int(c.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0])


class ClusterInflux:
    """Runs the forwarder while this worker holds the role; another worker takes over when it dies."""

    def __init__(self, db: Database, settings: Settings, metrics: Metrics, leases: Leases) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.leases = leases
        self.forwarder: InfluxForwarder | None = None
        self._generation = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kawal-influx-role", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.forwarder is not None:
            self.forwarder.stop()
            self.forwarder = None

    def _run(self) -> None:
        while not self._stop.wait(ROLE_POLL_S if self.forwarder is None else 0.2):
            try:
                if self.forwarder is None:
                    generation = self.leases.generation
                    if self.leases.joined and self.leases.try_role("influx"):
                        self._generation = generation
                        log.info("this worker forwards readings to InfluxDB")
                        self.forwarder = _BoundedForwarder(self.db, self.settings, self.metrics)
                        self.forwarder.start()
                elif not self.leases.joined or self.leases.generation != self._generation:
                    # the role went with the lease connection
                    self.forwarder.stop()
                    self.forwarder = None
            except Exception:
                log.exception("the InfluxDB role check failed")
