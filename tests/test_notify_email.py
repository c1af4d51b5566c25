"""Email through a real SMTP server (aiosmtpd) started by the test: a seal break on the way to PPK Diwek
becomes a message in Bahasa Indonesia with the crate, the place, the time in WIB and the dashboard link."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from notify.mail import wib
from tests.notify_helpers import FAST, call, seal_break, trip_body
from tests.servers import KawalServer, Mosquitto, free_port, wait_for


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, _Inbox]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_seal_break_email_in_indonesian(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer], smtp: tuple[Controller, _Inbox]
) -> None:
    controller, inbox = smtp
    srv = kawal_factory(
        env={
            "KAWAL_MQTT_URL": mosquitto.url,
            "KAWAL_SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
            "KAWAL_SMTP_FROM": "kawal@kpu.example",
            "KAWAL_PUBLIC_URL": "https://kawal.kpu.example",
            **FAST,
        }
    )
    status, body = call(
        srv,
        "PUT",
        "/api/v1/notifications/ketua-ppk",
        {"kind": "email", "to": ["ketua.ppk@example.org", "bawaslu@example.org"], "types": ["seal_break"]},
    )
    assert status == 200, body
    assert body["to"] == ["ketua.ppk@example.org", "bawaslu@example.org"] and body["has_secret"] is False
    assert call(srv, "PUT", "/api/v1/trips/T-E", trip_body("TRK-E", "JBG-KS-0001", "PPK Diwek"))[0] in (200, 201)
    seal_break(mosquitto.port, "TRK-E", -7.5952, 112.2344)  # in desa of kecamatan Diwek

    wait_for(lambda: len(inbox.messages) >= 1, timeout=30, what="the email at the SMTP server")
    ((sender, rcpts, msg),) = inbox.messages
    (alert,) = srv.get("/api/v1/alerts", type="seal_break")["items"]
    assert sender == "kawal@kpu.example" and sorted(rcpts) == ["bawaslu@example.org", "ketua.ppk@example.org"]
    subject = str(msg["Subject"])
    assert "KRITIS" in subject and "Segel terbuka" in subject and "JBG-KS-0001" in subject and "Diwek" in subject
    text = msg.get_content()
    assert "Peti:        JBG-KS-0001" in text and "Tujuan:      PPK Diwek" in text
    assert "Kec. Diwek" in text and f"Desa {alert['place']['desa']}" in text
    # The reading's time in WIB (UTC+7), as the message spells it.
    ts = datetime.fromisoformat(alert["ts"].replace("Z", "+00:00"))
    assert wib(alert["ts"]) in text and f"{(ts + timedelta(hours=7)):%H.%M.%S} WIB" in text
    assert ts.tzinfo is UTC or ts.utcoffset() == timedelta(0)
    assert f"https://kawal.kpu.example/#alert={alert['id']}" in text
    assert msg["X-Kawal-Event-Id"] and re.fullmatch(r"\d+", str(msg["X-Kawal-Event-Id"]))
    wait_for(
        lambda: call(srv, "GET", f"/api/v1/alerts/{alert['id']}/deliveries")[1]["items"][0]["status"] == "delivered",
        timeout=10,
        what="the email delivery recorded",
    )


def test_wib_spelling() -> None:
    assert wib("2024-11-20T01:15:30.120Z") == "Rabu, 20 November 2024 08.15.30 WIB"
    assert wib("2024-11-30T20:00:00Z") == "Minggu, 1 Desember 2024 03.00.00 WIB"
