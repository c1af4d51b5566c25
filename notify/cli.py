"""`kawal notify`: add, list, remove and test notification channels (CONTRACT 2.7).

Like the other admin commands it works on the database directly (--db or KAWAL_DB), so it also works while
the service is stopped; a running service picks up a changed channel within a second.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import uuid

import click
from pydantic import ValidationError

from api.commands import DB_OPTION, _default_actor, _open
from notify.model import NAME_RE, ChannelIn

_SAMPLE_ALERT = {
    "type": "seal_break",
    "severity": "critical",
    "status": "open",
    "trip_id": "T-UJI",
    "crate_id": "JBG-KS-UJI",
    "tracker_id": "TRK-UJI",
    "lat": -7.5952,
    "lon": 112.2344,
    "place": {"kecamatan": "Diwek", "desa": "Balongbesuk"},
    "details": {"test": True, "note": "pesan uji dari `kawal notify test`"},
}


@click.group()
def notify() -> None:
    """Notification channels: webhooks and email."""


@notify.command("add")
@click.argument("name")
@click.option("--webhook", "url", metavar="URL", help="a webhook channel posting to this http(s) URL")
@click.option("--secret", help="webhook: HMAC key of X-Kawal-Signature (default: a new random one, printed once)")
@click.option("--email", "to", multiple=True, metavar="ADDRESS", help="an email channel to this address (repeat)")
@click.option("--type", "types", multiple=True, metavar="TYPE", help="only these alert types (repeat)")
@click.option("--min-severity", type=click.Choice(["critical", "major", "minor", "warning"]))
@click.option("--kecamatan", multiple=True, metavar="NAME", help="only alerts in this kecamatan (repeat)")
@click.option("--escalate-after-min", type=float, help="send a still-open alert again after this many minutes")
@DB_OPTION
@click.option("--actor", default=_default_actor, show_default="cli:<user>", help="name in the audit log")
def add(
    name: str,
    url: str | None,
    secret: str | None,
    to: tuple[str, ...],
    types: tuple[str, ...],
    min_severity: str | None,
    kecamatan: tuple[str, ...],
    escalate_after_min: float | None,
    db_path: str,
    actor: str,
) -> None:
    """Create or replace the channel NAME."""
    from notify.store import NotifyStore

    if not NAME_RE.match(name):
        raise click.ClickException("a channel name is 1 to 64 of A-Z a-z 0-9 . _ -")
    if bool(url) == bool(to):
        raise click.ClickException("give either --webhook URL or --email ADDRESS")
    store = NotifyStore(_open(db_path))
    generated = None
    old = store.channel(name)
    if url and secret is None and (old is None or old.kind != "webhook"):
        secret = generated = secrets.token_urlsafe(32)
    spec = {
        "kind": "webhook" if url else "email",
        "url": url,
        "secret": secret,
        "to": list(to) or None,
        "types": list(types),
        "min_severity": min_severity,
        "kecamatan": list(kecamatan),
        "escalate_after_min": escalate_after_min,
    }
    try:
        body = ChannelIn.model_validate({k: v for k, v in spec.items() if v is not None})
        ch, created = store.put(name, body, actor, time.time())
    except (ValidationError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"channel {name!r} ({ch.kind}) {'created' if created else 'replaced'}", err=True)
    if generated:
        click.echo(generated)
        click.echo("that is the webhook secret; it will not be shown again", err=True)


@notify.command("list")
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def list_cmd(db_path: str, as_json: bool) -> None:
    """The channels (never their secrets) and their pending deliveries."""
    from notify.store import NotifyStore

    store = NotifyStore(_open(db_path))
    for ch in store.channels():
        shown = store.show(ch)
        if as_json:
            click.echo(shown.model_dump_json())
            continue
        where = shown.url if shown.kind == "webhook" else ", ".join(shown.to or [])
        filters = [
            f"types={','.join(map(str, shown.types))}" if shown.types else "",
            f"min_severity={shown.min_severity}" if shown.min_severity else "",
            f"kecamatan={','.join(shown.kecamatan)}" if shown.kecamatan else "",
            f"escalate_after_min={shown.escalate_after_min:g}" if shown.escalate_after_min else "",
        ]
        extra = " ".join(f for f in filters if f)
        click.echo(f"{shown.name}\t{shown.kind}\t{where}\tpending={shown.pending}\t{extra}".rstrip())


@notify.command("remove")
@click.argument("name")
@DB_OPTION
@click.option("--actor", default=_default_actor, show_default="cli:<user>", help="name in the audit log")
def remove(name: str, db_path: str, actor: str) -> None:
    """Remove the channel NAME and its pending deliveries."""
    from notify.store import ChannelNotFound, NotifyStore

    try:
        NotifyStore(_open(db_path)).delete(name, actor)
    except ChannelNotFound:
        raise click.ClickException(f"no channel {name!r}") from None
    click.echo(f"channel {name!r} removed", err=True)


@notify.command("test")
@click.argument("name")
@DB_OPTION
def test(name: str, db_path: str) -> None:
    """Send a sample alert to the channel NAME now, outside the outbox, and say whether it arrived.

    The webhook body has `"event": "test"` and a sample alert whose details say it is a test. Email uses
    KAWAL_SMTP_URL and KAWAL_SMTP_FROM, as the service does. Exit code 1 when the delivery failed."""
    from kawal.settings import Settings
    from kawal.timeutil import rfc3339
    from notify.dispatch import deliver
    from notify.store import Delivery, NotifyStore, webhook_body
    from notify.webhook import DeliveryError

    ch = NotifyStore(_open(db_path)).channel(name)
    if ch is None:
        raise click.ClickException(f"no channel {name!r}")
    settings = Settings.model_validate({})  # KAWAL_* from the environment
    now = time.time()
    event_id = f"test-{uuid.uuid4().hex[:12]}"
    alert = {"id": event_id.upper(), **_SAMPLE_ALERT, "ts": rfc3339(now), "raised_at": rfc3339(now)}
    d = Delivery(
        0,
        name,
        event_id,
        "test",
        str(alert["id"]),
        webhook_body(event_id, "test", json.dumps(alert)),
        {"destination": "PPK Diwek"},
        0,
        now,
        now,
    )
    public_url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    try:
        deliver(ch, d, settings, public_url)
    except DeliveryError as e:
        click.echo(f"channel {name!r}: test {event_id} NOT delivered: {e}", err=True)
        sys.exit(1)
    click.echo(f"channel {name!r}: test {event_id} delivered")
