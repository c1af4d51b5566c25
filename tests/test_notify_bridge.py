"""The Telegram bridge example of docs/notifications.md: Kawal's signed webhook in, one bot message out; a
bad signature is refused, a repeated event_id is forwarded once. Telegram's Bot API is played by a small
HTTP server started by the test (TELEGRAM_API_URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from notify.store import webhook_body
from notify.webhook import DeliveryError, post
from tests.servers import free_port, wait_port

BRIDGE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "telegram_bridge.py"


def test_bridge_verifies_and_forwards_once() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    class BotApi(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sent.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    bot = ThreadingHTTPServer(("127.0.0.1", free_port()), BotApi)
    threading.Thread(target=bot.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        **os.environ,
        "KAWAL_WEBHOOK_SECRET": "rahasia",
        "TELEGRAM_BOT_TOKEN": "123:ABC",
        "TELEGRAM_CHAT_ID": "-1001",
        "TELEGRAM_API_URL": f"http://127.0.0.1:{bot.server_address[1]}",
    }
    proc = subprocess.Popen([sys.executable, str(BRIDGE), "--port", str(port)], env=env)
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/kawal"
        alert = {
            "id": "A1",
            "type": "seal_break",
            "severity": "critical",
            "status": "open",
            "crate_id": "JBG-KS-0001",
            "tracker_id": "TRK-1",
            "ts": "2024-11-20T01:15:30Z",
            "lat": -7.5952,
            "lon": 112.2344,
            "place": {"kecamatan": "Diwek", "desa": "Balongbesuk"},
        }
        body = webhook_body("17", "alert.raised", json.dumps(alert))
        try:
            post(url, "wrong-secret", "17", "alert.raised", body, 5)
            raise AssertionError("a bad signature was accepted")
        except DeliveryError as e:
            assert "401" in str(e)
        assert post(url, "rahasia", "17", "alert.raised", body, 5) == 200
        assert post(url, "rahasia", "17", "alert.raised", body, 5) == 200  # again: de-duplicated
        ((path, msg),) = sent
        assert path == "/bot123:ABC/sendMessage" and msg["chat_id"] == "-1001"
        assert "KRITIS" in msg["text"] and "JBG-KS-0001" in msg["text"] and "Kec. Diwek" in msg["text"]
        assert "08.15.30 WIB" in msg["text"]
    finally:
        proc.terminate()
        proc.wait(10)
        bot.shutdown()
        bot.server_close()
