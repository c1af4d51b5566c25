"""Webhook delivery: one signed POST per event (CONTRACT 2.7)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
from urllib.parse import urlsplit

from kawal import __version__

SIGNATURE_HEADER = "X-Kawal-Signature"
EVENT_ID_HEADER = "X-Kawal-Event-Id"


class DeliveryError(Exception):
    """The receiver did not take the event (no 2xx); it is retried later."""


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body with the channel's secret>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(url: str, secret: str, event_id: str, event: str, body: str, timeout_s: float) -> int:
    """POST the body; returns the 2xx status. Raises DeliveryError for anything else, redirects included
    (a signed body is not re-sent to wherever a redirect points)."""
    raw = body.encode()
    parts = urlsplit(url)
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout_s, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Kawal/{__version__}",
        EVENT_ID_HEADER: event_id,
        "X-Kawal-Event": event,
        SIGNATURE_HEADER: signature(secret, raw),
    }
    try:
        conn.request("POST", path, body=raw, headers=headers)
        resp = conn.getresponse()
        resp.read(65536)
        status = resp.status
    except (OSError, http.client.HTTPException) as e:
        raise DeliveryError(f"{type(e).__name__}: {e}"[:300]) from e
    finally:
        conn.close()
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")
    return status
