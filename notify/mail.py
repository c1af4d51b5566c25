"""Email delivery through KAWAL_SMTP_URL (CONTRACT 2.7), in Bahasa Indonesia: the crate, the place, the time
in WIB and a link to the dashboard. smtplib runs in the channel's own worker thread."""

from __future__ import annotations

import json
import smtplib
import ssl
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from notify.model import ESCALATED
from notify.webhook import DeliveryError

WIB = timezone(timedelta(hours=7), "WIB")
_DAYS = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]
_MONTHS = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
]


@cache
def _labels() -> dict[str, str]:
    """The dashboard's Indonesian labels of types, severities and statuses: one wording everywhere."""
    text = resources.files("api.dashboard").joinpath("i18n_id.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if isinstance(v, str)}


def _label(key: str, fallback: str) -> str:
    return _labels().get(key, fallback)


def wib(rfc: str | None) -> str:
    """An RFC 3339 time as Indonesians read it, e.g. `Rabu, 20 November 2024 08.15.30 WIB`."""
    if not rfc:
        return "-"
    t = datetime.fromisoformat(rfc.replace("Z", "+00:00")).astimezone(WIB)
    return f"{_DAYS[t.weekday()]}, {t.day} {_MONTHS[t.month - 1]} {t.year} {t:%H.%M.%S} WIB"


def place_text(alert: dict[str, Any], destination: str | None) -> str:
    place = alert.get("place")
    if isinstance(place, dict) and (place.get("kecamatan") or place.get("desa")):
        parts = [
            f"Desa {place['desa']}" if place.get("desa") else "",
            f"Kec. {place['kecamatan']}" if place.get("kecamatan") else "",
        ]
        return ", ".join(p for p in parts if p)
    if destination:
        return f"menuju {destination}"
    return "tempat tidak diketahui"


def alert_link(public_url: str, alert: dict[str, Any]) -> str:
    return f"{public_url.rstrip('/')}/#alert={quote(str(alert.get('id', '')))}"


def compose(
    event: str,
    alert: dict[str, Any],
    destination: str | None,
    public_url: str,
    sender: str,
    to: list[str],
    escalate_after_min: float | None = None,
) -> EmailMessage:
    kind = _label(f"type.{alert.get('type')}", str(alert.get("type")))
    severity = _label(f"severity.{alert.get('severity')}", str(alert.get("severity")))
    crate = alert.get("crate_id") or alert.get("tracker_id") or "-"
    where = place_text(alert, destination)
    prefix = {ESCALATED: "ESKALASI — ", "test": "UJI — "}.get(event, "")
    msg = EmailMessage()
    msg["Subject"] = f"[Kawal] {prefix}{severity.upper()}: {kind} — peti {crate}, {where}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="kawal")
    lines = []
    if event == ESCALATED:
        minutes = f"{escalate_after_min:g} menit" if escalate_after_min else "batas waktu"
        lines += [f"Peringatan ini masih TERBUKA dan belum diakui siapa pun setelah {minutes}.", ""]
    lines += [
        f"Peringatan Kawal: {kind} ({severity})",
        "",
        f"Peti:        {crate}",
        f"Pelacak:     {alert.get('tracker_id') or '-'}",
        f"Perjalanan:  {alert.get('trip_id') or '-'}",
        f"Tempat:      {where}",
        f"Tujuan:      {destination or '-'}",
        f"Waktu:       {wib(alert.get('ts'))}",
        f"Dicatat:     {wib(alert.get('raised_at'))}",
        f"Status:      {_label('status.' + str(alert.get('status')), str(alert.get('status')))}",
    ]
    if alert.get("lat") is not None and alert.get("lon") is not None:
        lat, lon = float(alert["lat"]), float(alert["lon"])
        lines.append(f"Posisi:      {lat:.5f}, {lon:.5f}")
    lines += [
        "",
        f"Buka di dasbor: {alert_link(public_url, alert)}",
        "",
        f"ID peringatan: {alert.get('id')}",
        "Pesan ini dikirim otomatis oleh Kawal. Akui atau selesaikan peringatan di dasbor.",
    ]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def send(smtp_url: str, msg: EmailMessage, timeout_s: float) -> None:
    """Send through `smtp://[user:pass@]host:port` (STARTTLS when the server offers it) or `smtps://`."""
    parts = urlsplit(smtp_url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise DeliveryError(f"KAWAL_SMTP_URL must be smtp:// or smtps://host:port, not {parts.scheme}://")
    try:
        client: smtplib.SMTP
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(
                parts.hostname, parts.port or 465, timeout=timeout_s, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=timeout_s)
        with client:
            client.ehlo()
            if parts.scheme == "smtp" and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(msg)
    except (OSError, smtplib.SMTPException) as e:
        raise DeliveryError(f"{type(e).__name__}: {e}"[:300]) from e
