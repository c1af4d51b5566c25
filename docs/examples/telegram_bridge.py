"""Example: bridge Kawal's webhook to a Telegram group (docs/notifications.md). Not part of the service.

Run it next to Kawal, then point a webhook channel at it:

    export KAWAL_WEBHOOK_SECRET=...        # the channel's secret
    export TELEGRAM_BOT_TOKEN=123:ABC...   # from @BotFather
    export TELEGRAM_CHAT_ID=-100123...     # the group, with the bot added to it
    python docs/examples/telegram_bridge.py --port 8700
    kawal notify add piket-jombang --webhook http://127.0.0.1:8700/kawal --secret "$KAWAL_WEBHOOK_SECRET"

It checks `X-Kawal-Signature` over the raw body before anything else, answers 401 to a bad one, forwards each
event once (it remembers recent event ids, since delivery is at least once), and answers 502 when Telegram
cannot be reached, so that Kawal retries later. Only the standard library.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WIB = timezone(timedelta(hours=7))
SEVERITY = {"critical": "KRITIS", "major": "TINGGI", "minor": "SEDANG", "warning": "RENDAH"}
EVENT = {
    "alert.raised": "Peringatan baru",
    "alert.updated": "Perubahan",
    "alert.escalated": "ESKALASI: belum diakui",
    "test": "Pesan uji",
}
SEEN_MAX = 10_000


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """`X-Kawal-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, compared in constant time."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


def message(event: str, alert: dict[str, Any]) -> str:
    place = alert.get("place") or {}
    where = ", ".join(p for p in (place.get("desa"), place.get("kecamatan") and f"Kec. {place['kecamatan']}") if p)
    ts = datetime.fromisoformat(str(alert.get("ts", "")).replace("Z", "+00:00")).astimezone(WIB)
    lines = [
        f"{EVENT.get(event, event)} — {SEVERITY.get(alert.get('severity', ''), alert.get('severity'))}",
        f"{alert.get('type')} · peti {alert.get('crate_id') or alert.get('tracker_id')}",
        f"Tempat: {where or '-'}",
        f"Waktu: {ts:%d-%m-%Y %H.%M.%S} WIB",
        f"Status: {alert.get('status')}",
    ]
    if alert.get("lat") is not None:
        lines.append(
            f"https://www.openstreetmap.org/?mlat={alert['lat']}&mlon={alert['lon']}#map=16/{alert['lat']}/{alert['lon']}"
        )
    return "\n".join(lines)


def send_telegram(token: str, chat_id: str, text: str) -> None:
    data = json.dumps({"chat_id": chat_id, "text": text, "disable_web_page_preview": True}).encode()
    api = os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org")  # another Bot API server, if any
    req = urllib.request.Request(
        f"{api}/bot{token}/sendMessage", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8700)
    args = ap.parse_args()
    secret = os.environ["KAWAL_WEBHOOK_SECRET"].encode()
    token, chat_id = os.environ["TELEGRAM_BOT_TOKEN"], os.environ["TELEGRAM_CHAT_ID"]
    seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not signature_ok(secret, body, self.headers.get("X-Kawal-Signature")):
                return self._answer(401)
            doc = json.loads(body)
            event_id = str(doc["event_id"])
            if event_id in seen:  # at-least-once delivery: the same event may come twice
                return self._answer(200)
            try:
                send_telegram(token, chat_id, message(doc["event"], doc["alert"]))
            except (OSError, urllib.error.URLError):
                return self._answer(502)  # Kawal retries with backoff
            seen[event_id] = None
            if len(seen) > SEEN_MAX:
                seen.popitem(last=False)
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
