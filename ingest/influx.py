"""Forwarding stored readings to InfluxDB (2.x, 1.8+, 3) or VictoriaMetrics through the v2 write API.

SQLite's readings table is the durable outbox: the forwarder reads the readings after its high-water mark
(readings.id, persisted in the `meta` table), writes them as gzip'd line protocol, and advances the mark
only after the server accepted them. While the server is unreachable nothing is held in memory but the
current batch; the backlog waits on disk and drains, batch after batch, when the server returns or Kawal
restarts. Delivery is at-least-once: a crash between a successful write and saving the mark re-sends that
batch, which InfluxDB absorbs (same series + timestamp = same point); see docs/ingest.md for VictoriaMetrics.

Schema (InfluxDB schema guidance: tags for the few values you filter by, fields for measured values):
  measurement kawal_reading
  tags        tracker_id, crate_id (when the registry fixes the tracker to a crate)
  fields      lat, lon, acc, spd, hdg, bat (float), seq (integer), seal_code (integer: 0 closed,
              1 open, 2 tampered) and seal (string, InfluxDB only: VictoriaMetrics stores a string
              field as a meaningless 0-valued series, so it is left out there)
  timestamp   the reading's ts, millisecond precision
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from kawal.backoff import Backoff
from kawal.metrics import Metrics
from kawal.settings import Settings
from storage import Database

log = logging.getLogger(__name__)

MEASUREMENT = "kawal_reading"
SEAL_CODES = {"closed": 0, "open": 1, "tampered": 2}
IDLE_POLL_S = 0.5  # how long to wait for more readings when the last batch was not full
RETRY_MIN_S = 0.5
RETRY_MAX_S = 10.0
_TAG_ESCAPE = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\\": "\\\\", "\n": "", "\r": ""})
_QUERY = (
    "SELECT r.id, r.tracker_id, t.crate_id, r.ts, r.seq, r.lat, r.lon, r.acc, r.spd, r.hdg, r.bat, r.seal "
    "FROM readings r LEFT JOIN trackers t ON t.tracker_id = r.tracker_id "
    "WHERE r.id > ? AND r.id <= ? ORDER BY r.id LIMIT ?"
)


def line(row: Sequence[Any], with_strings: bool) -> str | None:
    """One stored reading as line protocol (ms timestamps); None when it carries no field at all."""
    _, tracker_id, crate_id, ts, seq, lat, lon, acc, spd, hdg, bat, seal = row
    fields = []
    if lat is not None:
        fields.append(f"lat={float(lat)!r},lon={float(lon)!r}")
    if acc is not None:
        fields.append(f"acc={float(acc)!r}")
    if spd is not None:
        fields.append(f"spd={float(spd)!r}")
    if hdg is not None:
        fields.append(f"hdg={float(hdg)!r}")
    if bat is not None:
        fields.append(f"bat={float(bat)!r}")
    if seq is not None and seq >= 0:
        fields.append(f"seq={seq}i")
    if seal is not None:
        fields.append(f"seal_code={SEAL_CODES.get(seal, -1)}i")
        if with_strings:
            fields.append(f'seal="{seal}"')
    if not fields:
        return None
    tags = f"tracker_id={tracker_id.translate(_TAG_ESCAPE)}"
    if crate_id:
        tags += f",crate_id={crate_id.translate(_TAG_ESCAPE)}"
    return f"{MEASUREMENT},{tags} {','.join(fields)} {round(ts * 1000)}"


def _status_of(e: BaseException) -> int | None:
    status = getattr(e, "status", None)
    return status if isinstance(status, int) else None


class InfluxForwarder:
    def __init__(self, db: Database, settings: Settings, metrics: Metrics) -> None:
        if not settings.influx_url:
            raise ValueError("InfluxForwarder needs KAWAL_INFLUX_URL")
        self.db = db
        self.url = settings.influx_url.rstrip("/")
        self.org = settings.influx_org
        self.bucket = settings.influx_bucket
        self.token = settings.influx_token.get_secret_value() if settings.influx_token else ""
        self.batch_size = max(1, settings.influx_batch_size)
        self.metrics = metrics
        self.mark_key = f"influx_hwm {self.url} {self.org} {self.bucket}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.with_strings: bool | None = None  # decided by asking the server what it is
        self.last_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="influx-forwarder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- state ---------------------------------------------------------------------------------------------

    def mark(self) -> int:
        r = self.db.conn().execute("SELECT value FROM meta WHERE key = ?", (self.mark_key,)).fetchone()
        return int(r[0]) if r else 0

    def _save_mark(self, mark: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (self.mark_key, str(mark)),
            )

    def pending(self) -> int:
        """Stored readings not yet written: exact on SQLite (dense ids unless rows were deleted); an upper
        bound on PostgreSQL, whose sequence also spends ids on inserts that found a duplicate."""
        top = self.db.conn().execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
        return max(0, int(top) - self.mark())

    def visible_upto(self) -> int:
        """The highest reading id below which no insert is still in flight. One process stores in id order;
        a cluster's workers do not (cluster/forward.py)."""
        return 2**62

    # -- the worker ----------------------------------------------------------------------------------------

    def _detect_strings(self) -> bool:
        """InfluxDB answers /ping with an X-Influxdb-Version header; VictoriaMetrics does not."""
        req = urllib.request.Request(f"{self.url}/ping")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                headers = {k.lower() for k in r.headers}
        except urllib.error.HTTPError as e:  # e.g. 401 from an InfluxDB 3 that wants a token
            headers = {k.lower() for k in e.headers}
        influx = "x-influxdb-version" in headers or "x-influxdb-build" in headers
        log.info(
            "influx target %s is %s", self.url, "InfluxDB" if influx else "not InfluxDB (no string fields)"
        )
        return influx

    def _run(self) -> None:
        client = InfluxDBClient(
            url=self.url, token=self.token, org=self.org, enable_gzip=True, timeout=30_000
        )
        write_api = client.write_api(write_options=SYNCHRONOUS)
        backoff = Backoff(RETRY_MIN_S, RETRY_MAX_S)
        try:
            mark = self.mark()
            while not self._stop.is_set():
                try:
                    if self.with_strings is None:
                        self.with_strings = self._detect_strings()
                    rows = self.db.conn().execute(_QUERY, (mark, self.visible_upto(), self.batch_size)).fetchall()
                    self.metrics.influx_pending.set(self.pending())
                    if not rows:
                        self._stop.wait(IDLE_POLL_S)
                        continue
                    mark = self._write(write_api, rows, mark)
                    backoff.reset()
                    if len(rows) < self.batch_size:
                        self._stop.wait(IDLE_POLL_S)
                except Exception as e:
                    self.metrics.influx_errors.inc()
                    self.last_error = repr(e)[:500]
                    delay = backoff.next()
                    log.warning("influx write failed (%s); retrying in %.1fs", self.last_error, delay)
                    self._stop.wait(delay)
        finally:
            client.close()

    def _write(self, write_api: Any, rows: list[Any], mark: int) -> int:
        """Write one batch; returns the new mark. Raises on a failure worth retrying."""
        lines = [ln for ln in (line(r, bool(self.with_strings)) for r in rows) if ln is not None]
        t0 = time.perf_counter()
        try:
            if lines:
                write_api.write(
                    bucket=self.bucket,
                    org=self.org,
                    record="\n".join(lines),
                    write_precision=WritePrecision.MS,
                )
        except Exception as e:
            status = _status_of(e)
            if status == 413 and len(rows) > 1:  # body too large for the server: halve the batch
                half = len(rows) // 2
                mark = self._write(write_api, rows[:half], mark)
                return self._write(write_api, rows[half:], mark)
            if status in (400, 422):
                # The server will never take these lines (e.g. a field type conflict with older data);
                # retrying would block every later reading, so skip them loudly, as Telegraf does.
                log.error("influx rejected %d readings for good (%s): %s", len(lines), status, repr(e)[:500])
                self.metrics.influx_errors.inc()
            else:
                raise
        else:
            self.metrics.influx_written.inc(len(lines))
            log.debug("wrote %d readings to influx in %.3fs", len(lines), time.perf_counter() - t0)
        new_mark = int(rows[-1][0])
        self._save_mark(new_mark)
        return new_mark
