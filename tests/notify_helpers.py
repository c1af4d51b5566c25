"""Shared pieces of the notification tests: a real HTTP receiver that records what it gets, and trips."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port


@dataclass
class Received:
    event_id: str
    event: str
    alert: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    at: float


def verify(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@dataclass
class Receiver:
    """A webhook receiver on a fixed port: answers `status` (200 by default), records every 2xx delivery."""

    port: int = field(default_factory=free_port)
    status: int = 200
    delay_s: float = 0.0  # a slow receiver: wait this long before answering
    got: list[Received] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay_s)
                with receiver._lock:
                    receiver.attempts += 1
                    status = receiver.status
                    if 200 <= status < 300:
                        doc = json.loads(body)
                        receiver.got.append(
                            Received(doc["event_id"], doc["event"], doc["alert"], dict(self.headers), body, time.time())
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[Received]:
        with self._lock:
            return list(self.got)


def trip_body(tracker: str, crate: str, destination: str, lat: float = -7.585, lon: float = 112.23) -> dict[str, Any]:
    """A trip in transit now (departed a minute ago, so no silence yet), heading for `destination`."""
    now = time.time()
    return {
        "crate_id": crate,
        "tracker_id": tracker,
        "origin": {"name": "Gudang KPU Jombang", "lat": -7.546, "lon": 112.233, "radius_m": 150},
        "destination": {"name": destination, "lat": lat, "lon": lon, "radius_m": 150},
        "route": [[-7.546, 112.233], [lat, lon]],
        "depart_after": now - 60,
        "arrive_by": now + 3 * 3600,
    }


def call(srv: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """An API request to a KawalServer as its admin; returns (status, JSON or None)."""
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{srv.base_url}{path}", data=data, method=method, headers={**srv.headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def publish(port: int, tracker: str, readings: list[dict[str, Any]]) -> None:
    import subprocess

    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-t",
            f"kawal/v1/{tracker}/telemetry",
            "-m",
            json.dumps(readings),
        ],
        check=True,
        timeout=30,
    )


def seal_break(port: int, tracker: str, lat: float = -7.56, lon: float = 112.231) -> float:
    """Publish a closed then an open seal reading; returns the time the open one was published."""
    now = time.time()
    publish(port, tracker, [{"ts": now - 5, "seq": 1, "lat": lat, "lon": lon, "seal": "closed", "bat": 90}])
    at = time.time()
    publish(port, tracker, [{"ts": at, "seq": 2, "lat": lat, "lon": lon, "seal": "open", "bat": 90}])
    return at


# Fast retries and polling for tests; what a deployment would set is in docs/notifications.md.
FAST = {"KAWAL_NOTIFY_POLL_S": "0.1", "KAWAL_NOTIFY_RETRY_MIN_S": "0.2", "KAWAL_NOTIFY_RETRY_MAX_S": "1.0"}
