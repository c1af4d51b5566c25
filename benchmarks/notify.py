"""Notifications (notify/): what the outbox costs an alert change, and how fast a channel drains.

    python -m benchmarks.notify [--alerts 1000] [--channels 0 1 5 20] [--events 1000] [--db PATH_OR_URL]

1. Enqueue: `--alerts` seal breaks raised through the AlertStore with 0, 1, 5 and 20 webhook channels (half of
   them filtered to a kecamatan), each raise one write transaction with its outbox rows, as in the service.
   Reported: ms per raise.
2. Drain: `--events` alert changes queued for one channel, then sent by the dispatcher to a local HTTP receiver
   (ThreadingHTTPServer answering 200), one request at a time in id order, as in the service. Reported:
   deliveries per second, one channel and four channels side by side.
The database is a fresh SQLite file (default) or the PostgreSQL database given by --db (it must be empty).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from alerts.broadcast import Broadcaster
from alerts.model import AlertAction, AlertEvent, AlertType
from alerts.store import AlertStore
from kawal.audit import AuditLog
from kawal.metrics import Metrics
from kawal.settings import Settings
from notify.dispatch import Dispatcher
from notify.metrics import NotifyMetrics
from notify.model import ChannelIn
from notify.store import NotifyStore
from storage import Database, open_database


def _stores(db: Database) -> tuple[AlertStore, NotifyStore]:
    alerts = AlertStore(db, AuditLog(db), Broadcaster(), Metrics())
    notify = NotifyStore(db)
    alerts.change_hooks.append(notify.enqueue)
    return alerts, notify


def _raise(alerts: AlertStore, tracker: str) -> None:
    ev = AlertEvent(
        action=AlertAction.RAISE, type=AlertType.SEAL_BREAK, tracker_id=tracker, ts=1e9, lat=-7.5952, lon=112.2344
    )
    alerts.apply(ev)


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--channels", type=int, nargs="+", default=[0, 1, 5, 20])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--db", default=None, help="an empty PostgreSQL database URL (default: a SQLite file)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kawal-bench-notify-"))
    db = open_database(args.db or tmp / "kawal.db")
    alerts, notify = _stores(db)
    made = 0
    for round_, n in enumerate(args.channels):
        while made < n:
            spec = ChannelIn(kind="webhook", url="http://127.0.0.1:9/", secret="s", kecamatan=["Diwek"] * (made % 2))
            notify.put(f"bench-{made}", spec, "bench", time.time())
            made += 1
        t = time.perf_counter()
        for i in range(args.alerts):
            _raise(alerts, f"E{round_}-{i}")
        ms = (time.perf_counter() - t) / args.alerts * 1000
        print(f"{db.dialect}: {n} channels: {ms:.2f} ms per raise with its outbox rows")
    for name in [c.name for c in notify.channels()]:
        notify.delete(name, "bench")

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    settings = Settings.model_validate({"notify_poll_s": 0.05})
    for width in (1, 4):
        names = [f"drain-{width}-{i}" for i in range(width)]
        for name in names:
            notify.put(name, ChannelIn(kind="webhook", url=url, secret="s"), "bench", time.time())
        for i in range(args.events):
            _raise(alerts, f"D{width}-{i}")
        d = Dispatcher(notify, settings, NotifyMetrics(Metrics().registry, notify), "bench", lambda _: None, url)
        t = time.perf_counter()
        d.start()
        while any(notify.depth().get(n, 0) for n in names):
            time.sleep(0.02)
        dt = time.perf_counter() - t
        d.stop()
        total = args.events * width
        print(f"{db.dialect}: drain {width} channel(s), {total} deliveries: {total / dt:.0f} deliveries/s")
        for name in names:
            notify.delete(name, "bench")
    server.shutdown()


if __name__ == "__main__":
    main()
