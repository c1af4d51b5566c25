"""Channels and the outbox in the database (CONTRACT 2.7).

`enqueue` runs inside the transaction of every alert change (alerts/store.py's change hooks), so a change
and its deliveries commit together: a crash cannot lose one. The dispatcher reads a channel's pending
rows in id order, a page at a time, and marks each delivered or due again later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerts.model import Alert
from kawal.audit import AuditLog
from kawal.timeutil import rfc3339
from notify.model import (
    ESCALATED,
    EVENT_OF_ACTION,
    Channel,
    ChannelIn,
    ChannelOut,
    DeliveryOut,
    place_kecamatan,
)
from storage import Connection, Database

log = logging.getLogger(__name__)

_INSERT = (
    "INSERT INTO notify_outbox (channel, event_id, event, alert_id, body, context, status, attempts, created_at,"
    " next_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (channel, event_id) DO NOTHING"
)


@dataclass(frozen=True)
class Delivery:
    """One pending outbox row."""

    id: int
    channel: str
    event_id: str
    event: str
    alert_id: str
    body: str
    context: dict[str, Any]
    attempts: int
    created_at: float
    next_at: float


class ChannelNotFound(LookupError):
    pass


def webhook_body(event_id: str, event: str, alert_json: str) -> str:
    """The body of CONTRACT 2.7, with the Alert JSON exactly as the stream sent it."""
    return f'{{"event_id":{json.dumps(event_id)},"event":{json.dumps(event)},"alert":{alert_json}}}'


def escalation_event_id(alert_id: str) -> str:
    return f"{alert_id}:escalated"


class NotifyStore:
    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit
        # Parsed channels by their stored row: every alert change reads the (small) table, but parses a
        # channel only when it changed.
        self._parsed: dict[tuple[str, str, float, float], Channel] = {}

    # ---- channels ------------------------------------------------------------------------------

    def channels(self, c: Connection | None = None) -> list[Channel]:
        rows = (
            (c or self.db.conn())
            .execute("SELECT name, body, created_at, updated_at FROM notify_channels ORDER BY name")
            .fetchall()
        )
        out = []
        for r in rows:
            key = (str(r["name"]), str(r["body"]), float(r["created_at"]), float(r["updated_at"]))
            ch = self._parsed.get(key)
            if ch is None:
                try:
                    ch = _channel(r)
                except ValueError:  # a row edited by hand: skip it rather than fail the alert change
                    log.exception("notification channel %r is unreadable; skipped", key[0])
                    continue
                if len(self._parsed) > 1000:
                    self._parsed.clear()
                self._parsed[key] = ch
            out.append(ch)
        return out

    def channel(self, name: str) -> Channel | None:
        row = (
            self.db.conn()
            .execute("SELECT name, body, created_at, updated_at FROM notify_channels WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else _channel(row)

    def put(self, name: str, spec: ChannelIn, actor: str, now: float) -> tuple[Channel, bool]:
        """Create or replace a channel; returns it and whether it was created. A webhook replaced without a
        secret keeps the stored one. Raises ValueError when a new webhook has no secret."""
        with self.db.write() as c:
            row = c.execute(
                f"SELECT name, body, created_at, updated_at FROM notify_channels WHERE name = ?{self.db.row_lock}",
                (name,),
            ).fetchone()
            old = None if row is None else _channel(row)
            secret = spec.secret
            if spec.kind == "webhook" and secret is None:
                if old is None or old.kind != "webhook" or not old.secret:
                    raise ValueError("a new webhook channel needs a secret")
                secret = old.secret
            ch = Channel(
                **{**spec.model_dump(), "secret": secret},
                name=name,
                created_at=old.created_at if old else now,
                updated_at=now,
            )
            body = ch.model_dump_json(exclude={"name", "created_at", "updated_at"})
            c.execute(
                "INSERT INTO notify_channels (name, kind, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, body = excluded.body,"
                " updated_at = excluded.updated_at",
                (name, ch.kind, body, ch.created_at, now),
            )
            if self.audit is not None:
                shown = ch.model_dump(mode="json", exclude={"secret", "created_at", "updated_at"})
                self.audit.append(c, actor, "notify.channel_put", f"channel:{name}", shown)
        return ch, old is None

    def delete(self, name: str, actor: str) -> None:
        """Remove a channel and its pending deliveries (delivered ones stay, for the alerts' record)."""
        with self.db.write() as c:
            n = c.execute("DELETE FROM notify_channels WHERE name = ?", (name,)).rowcount
            if not n:
                raise ChannelNotFound(name)
            c.execute("DELETE FROM notify_outbox WHERE channel = ? AND status = 'pending'", (name,))
            c.execute("DELETE FROM notify_leases WHERE channel = ?", (name,))
            if self.audit is not None:
                self.audit.append(c, actor, "notify.channel_delete", f"channel:{name}", {})

    def show(self, ch: Channel) -> ChannelOut:
        return ChannelOut(
            **ch.model_dump(exclude={"secret", "created_at", "updated_at"}),
            has_secret=bool(ch.secret),
            created_at=rfc3339(ch.created_at) or "",
            updated_at=rfc3339(ch.updated_at) or "",
            pending=self.depth().get(ch.name, 0),
        )

    # ---- the outbox, written with the alert change -------------------------------------------------

    def enqueue(self, c: Connection, event_id: int, alert: Alert, action: str, alert_json: str, now: float) -> None:
        """An alert change's deliveries, one per matching channel, in the change's own transaction."""
        event = EVENT_OF_ACTION.get(action)
        if event is None:
            return
        channels = self.channels(c)
        if not channels:
            return
        self._enqueue(c, channels, str(event_id), event, alert.id, alert.trip_id, alert_json, now)

    def _enqueue(
        self,
        c: Connection,
        channels: list[Channel],
        event_id: str,
        event: str,
        alert_id: str,
        trip_id: str | None,
        alert_json: str,
        now: float,
    ) -> int:
        alert = json.loads(alert_json)
        destination: Callable[[], str | None] = _Once(lambda: self._destination(c, trip_id))
        body = webhook_body(event_id, event, alert_json)
        rows = []
        for ch in channels:
            if not ch.wants(event):
                continue
            dest = destination() if ch.kecamatan and place_kecamatan(alert) is None else None
            if not ch.matches(alert, dest):
                continue
            context = {"destination": destination()} if ch.kind == "email" else {}
            rows.append((ch.name, event_id, event, alert_id, body, json.dumps(context), now, now))
        if rows:
            c.executemany(_INSERT, rows)
        return len(rows)

    def _destination(self, c: Connection, trip_id: str | None) -> str | None:
        if trip_id is None:
            return None
        row = c.execute("SELECT body FROM trips WHERE trip_id = ?", (trip_id,)).fetchone()
        if row is None:
            return None
        try:
            name = json.loads(row[0]).get("destination", {}).get("name")
        except (ValueError, AttributeError):
            return None
        return name if isinstance(name, str) else None

    # ---- escalation ------------------------------------------------------------------------------

    def escalate(self, ch: Channel, now: float, alert_json: Callable[[str], str | None], limit: int = 200) -> int:
        """Queue `alert.escalated` for the channel's alerts still open `escalate_after_min` after they were
        raised (raised since the channel exists), each at most once. Returns how many were queued."""
        if ch.escalate_after_min is None:
            return 0
        cutoff = now - ch.escalate_after_min * 60.0
        ids = [
            str(r[0])
            for r in self.db.conn().execute(
                "SELECT a.id FROM alerts a WHERE a.status = 'open' AND a.raised_at <= ? AND a.raised_at >= ?"
                " AND NOT EXISTS (SELECT 1 FROM notify_escalations e WHERE e.channel = ? AND e.alert_id = a.id)"
                " ORDER BY a.raised_at LIMIT ?",
                (cutoff, ch.created_at, ch.name, limit),
            )
        ]
        queued = 0
        for alert_id in ids:
            with self.db.write() as c:
                row = c.execute(
                    f"SELECT status, trip_id FROM alerts WHERE id = ?{self.db.row_lock}", (alert_id,)
                ).fetchone()
                if row is None or row["status"] != "open":
                    continue  # acknowledged or resolved meanwhile: someone is on it
                data = alert_json(alert_id)
                if data is None:
                    continue
                alert = json.loads(data)
                dest = self._destination(c, row["trip_id"])
                matched = ch.matches(alert, dest)
                claimed = c.execute(
                    "INSERT INTO notify_escalations (channel, alert_id, at, sent) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (channel, alert_id) DO NOTHING RETURNING alert_id",
                    (ch.name, alert_id, now, int(matched)),
                ).fetchone()
                if claimed is None or not matched:
                    continue  # another worker got there first, or the channel does not want this alert
                queued += self._enqueue(
                    c, [ch], escalation_event_id(alert_id), ESCALATED, alert_id, row["trip_id"], data, now
                )
        return queued

    # ---- the dispatcher's side -------------------------------------------------------------------

    def pending(self, channel: str, limit: int) -> list[Delivery]:
        rows = (
            self.db.conn()
            .execute(
                "SELECT id, channel, event_id, event, alert_id, body, context, attempts, created_at, next_at"
                " FROM notify_outbox WHERE channel = ? AND status = 'pending' ORDER BY id LIMIT ?",
                (channel, limit),
            )
            .fetchall()
        )
        return [
            Delivery(
                id=int(r[0]),
                channel=str(r[1]),
                event_id=str(r[2]),
                event=str(r[3]),
                alert_id=str(r[4]),
                body=str(r[5]),
                context=json.loads(r[6] or "{}"),
                attempts=int(r[7]),
                created_at=float(r[8]),
                next_at=float(r[9]),
            )
            for r in rows
        ]

    def delivered(self, delivery_id: int, now: float) -> None:
        with self.db.write() as c:
            c.execute(
                "UPDATE notify_outbox SET status = 'delivered', delivered_at = ?, attempts = attempts + 1,"
                " last_error = NULL WHERE id = ?",
                (now, delivery_id),
            )

    def failed(self, delivery_id: int, error: str, next_at: float) -> None:
        with self.db.write() as c:
            c.execute(
                "UPDATE notify_outbox SET attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?",
                (error[:500], next_at, delivery_id),
            )

    def acquire(self, channel: str, owner: str, now: float, ttl_s: float) -> bool:
        """Take or renew the lease on sending the channel's deliveries; False while another process holds it."""
        with self.db.write() as c:
            row = c.execute(
                "INSERT INTO notify_leases (channel, owner, until) VALUES (?, ?, ?) ON CONFLICT (channel) DO UPDATE"
                " SET owner = excluded.owner, until = excluded.until"
                " WHERE notify_leases.owner = excluded.owner OR notify_leases.until < ? RETURNING owner",
                (channel, owner, now + ttl_s, now),
            ).fetchone()
        return row is not None

    def release(self, channel: str, owner: str) -> None:
        with self.db.write() as c:
            c.execute("DELETE FROM notify_leases WHERE channel = ? AND owner = ?", (channel, owner))

    # ---- reads -----------------------------------------------------------------------------------

    def deliveries(self, alert_id: str) -> list[DeliveryOut]:
        rows = (
            self.db.conn()
            .execute(
                "SELECT o.channel, ch.kind, o.event_id, o.event, o.status, o.attempts, o.created_at, o.next_at,"
                " o.delivered_at, o.last_error FROM notify_outbox o LEFT JOIN notify_channels ch ON ch.name = o.channel"
                " WHERE o.alert_id = ? ORDER BY o.id",
                (alert_id,),
            )
            .fetchall()
        )
        return [
            DeliveryOut(
                channel=r[0],
                kind=r[1],
                event_id=r[2],
                event=r[3],
                status=r[4],
                attempts=int(r[5]),
                created_at=rfc3339(r[6]) or "",
                next_at=rfc3339(r[7]) if r[4] == "pending" else None,
                delivered_at=rfc3339(r[8]),
                last_error=r[9],
            )
            for r in rows
        ]

    def depth(self) -> dict[str, int]:
        """Pending deliveries per channel."""
        rows = self.db.conn().execute(
            "SELECT channel, count(*) FROM notify_outbox WHERE status = 'pending' GROUP BY channel"
        )
        return {str(r[0]): int(r[1]) for r in rows}


class _Once:
    """A lookup made at most once, and only when needed."""

    def __init__(self, fn: Callable[[], str | None]) -> None:
        self.fn = fn
        self.done = False
        self.value: str | None = None

    def __call__(self) -> str | None:
        if not self.done:
            self.value, self.done = self.fn(), True
        return self.value


def _channel(row: Any) -> Channel:
    return Channel.model_validate(
        {
            **json.loads(row["body"]),
            "name": row["name"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
    )
