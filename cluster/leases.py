"""Partition leases in PostgreSQL: session advisory locks, one per partition, on one connection per worker.

A worker owns a partition while its lease connection holds the partition's lock. When the worker dies
(even by `kill -9`) its database session ends and PostgreSQL drops its locks at once, so the survivors
see the partitions free on their next check (KAWAL_CLUSTER_REBALANCE_S). A worker that loses its lease
connection has lost every lock with it and stops detecting until it holds them again.

Which worker should own a partition is rendezvous hashing over the live workers (a worker is live while
its own worker lock is held), so every worker computes the same answer without talking to the others
and a join or a death moves only the partitions that must move. The partition's detector snapshot is
written through the lease connection too, so a worker that lost its locks cannot overwrite its
successor's snapshot.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Sequence
from typing import Any

import psycopg

log = logging.getLogger(__name__)

# Advisory lock classes (the first of the two-int key): Kawal's partitions, workers, and single roles.
LOCK_PARTITION = 0x4B57
LOCK_WORKER = 0x4B58
LOCK_ROLE = 0x4B59
ROLES = {"influx": 1}
# Other keys of LOCK_ROLE: 2 readings inserts vs the InfluxDB bound (cluster/forward.py), 3 the order of alert
# change ids (storage/migrations/0042_alert_event_order.postgres.sql).

_LOCKS = """
SELECT l.classid::bigint, l.objid::bigint, w.worker_id
FROM pg_locks l LEFT JOIN cluster_workers w ON w.backend_pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid IN (%s, %s)
"""


class LeaseLost(RuntimeError):
    pass


def worker_key(worker_id: str) -> int:
    return zlib.crc32(worker_id.encode()) & 0x7FFFFFFF


def rendezvous(part: int, workers: Sequence[str]) -> str | None:
    """The worker that should own `part`: the highest hash of (worker, partition)."""
    best: tuple[bytes, str] | None = None
    for w in workers:
        h = hashlib.blake2b(f"{w}\0{part}".encode(), digest_size=8).digest()
        if best is None or h > best[0]:
            best = (h, w)
    return None if best is None else best[1]


class Leases:
    def __init__(self, url: str, worker_id: str, partitions: int) -> None:
        self.url = url
        self.worker_id = worker_id
        self.partitions = partitions
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # the lease connection is shared by the balancer and snapshot writers
        self.generation = 0  # counts joins: whatever was held under an earlier one is gone

    # ---- joining ---------------------------------------------------------------------------------

    def join(self, http_url: str | None) -> None:
        """Connect, take this worker's lock and register. Raises when another live worker has the same id."""
        conn = psycopg.connect(self.url, autocommit=True)
        try:
            got = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_WORKER, worker_key(self.worker_id))
            ).fetchone()
            if not got or not got[0]:
                raise RuntimeError(f"worker id {self.worker_id!r} is in use by a live worker (or shares its key)")
            with conn.transaction():
                conn.execute("LOCK TABLE cluster_partitions IN EXCLUSIVE MODE")
                n = conn.execute("SELECT count(*) FROM cluster_partitions").fetchone()
                have = int(n[0]) if n else 0
                if have == 0:
                    conn.execute(
                        "INSERT INTO cluster_partitions (part) SELECT g FROM generate_series(0, %s) g",
                        (self.partitions - 1,),
                    )
                elif have != self.partitions:
                    raise RuntimeError(
                        f"this cluster's database has {have} partitions; KAWAL_CLUSTER_PARTITIONS is {self.partitions}"
                    )
                conn.execute(
                    "INSERT INTO cluster_workers (worker_id, backend_pid, http_url, started_at)"
                    " VALUES (%s, pg_backend_pid(), %s, %s) ON CONFLICT (worker_id) DO UPDATE SET"
                    " backend_pid = excluded.backend_pid, http_url = excluded.http_url,"
                    " started_at = excluded.started_at",
                    (self.worker_id, http_url, time.time()),
                )
        except Exception:
            conn.close()
            raise
        with self._lock:
            self._conn = conn
            self.generation += 1

    def leave(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # ends the session: every lock it held is released

    @property
    def joined(self) -> bool:
        c = self._conn
        return c is not None and not c.closed and not c.broken

    def _execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        with self._lock:
            c = self._conn
            if c is None or c.closed or c.broken:
                raise LeaseLost("the lease connection is gone")
            try:
                return c.execute(sql, args).fetchall()
            except psycopg.OperationalError as e:
                raise LeaseLost(str(e)) from e

    # ---- the view every worker computes the same way ----------------------------------------------

    def view(self) -> tuple[list[str], dict[int, str | None]]:
        """(live workers, sorted; partition -> the worker holding it)."""
        workers: set[str] = set()
        holders: dict[int, str | None] = {}
        for cls, obj, worker in self._execute(_LOCKS, (LOCK_WORKER, LOCK_PARTITION)):
            if cls == LOCK_WORKER and worker is not None and worker_key(worker) == obj:
                workers.add(worker)
            elif cls == LOCK_PARTITION:
                holders[int(obj)] = worker
        return sorted(workers), holders

    def try_lock(self, part: int) -> bool:
        rows = self._execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_PARTITION, part))
        return bool(rows[0][0])

    def unlock(self, part: int) -> None:
        self._execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_PARTITION, part))

    def try_role(self, role: str) -> bool:
        """A single job of the cluster (the InfluxDB forwarder): True while this worker holds it."""
        rows = self._execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_ROLE, ROLES[role]))
        return bool(rows[0][0])

    # ---- snapshots --------------------------------------------------------------------------------

    def load(self, part: int) -> tuple[int, bytes | None]:
        rows = self._execute("SELECT stream_seq, state FROM cluster_partitions WHERE part = %s", (part,))
        if not rows:
            return 0, None
        seq, state = rows[0]
        return int(seq), None if state is None else bytes(state)

    def save(self, part: int, seq: int, state: bytes) -> None:
        """Through the lease connection: if the locks are lost, so is the right to write."""
        self._execute(
            "UPDATE cluster_partitions SET stream_seq = %s, state = %s, saved_at = %s, owner = %s WHERE part = %s"
            " RETURNING part",
            (seq, state, time.time(), self.worker_id, part),
        )
