"""Alerts in the database with their lifecycle (CONTRACT 2.3): open -> acknowledged -> resolved.

"At most one unresolved alert per (tracker, type)" is the partial unique index ``alerts_one_open``; a
raise is one ``INSERT ... ON CONFLICT ... DO UPDATE`` against it, so racing raises from several threads or
processes cannot create a twin. Every change, in the same transaction, appends to ``alert_events`` (whose
id is the live-stream event id), to the audit log, and to the alert's own ``history``. The change is
published to the broadcaster after the commit.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from alerts.broadcast import Broadcaster
from alerts.model import (
    NEVER_AUTO_RESOLVE,
    SEVERITY,
    Alert,
    AlertAction,
    AlertEvent,
    AlertStatus,
)
from alerts.places import fill_places, place_columns
from alerts.queries import AlertQueries
from alerts.queries import row_alert as _row_alert
from alerts.queries import row_history as _history
from alerts.reopen import reopen_in
from kawal.audit import AuditLog, canonical_json
from kawal.metrics import Metrics
from kawal.places import Places, load_places
from kawal.timeutil import rfc3339
from storage import Connection, Database

log = logging.getLogger(__name__)

DETECTOR_ACTOR = "kawal"
HISTORY_LIMIT = 100  # per alert; consecutive detector updates share one entry, so this is rarely reached
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# A raise: the partial unique index decides insert or update; the WHERE skips repeats that change nothing
# (same details, position, trip, and the same episode: a condition that began again has a new event time).
_UPSERT = """
INSERT INTO alerts (id, type, severity, status, trip_id, crate_id, tracker_id, ts, raised_at, updated_at,
                    lat, lon, details, history, last_ts, kecamatan, place)
VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tracker_id, type) WHERE status != 'resolved' DO UPDATE SET
    details = excluded.details,
    lat = coalesce(excluded.lat, alerts.lat),
    lon = coalesce(excluded.lon, alerts.lon),
    kecamatan = CASE WHEN excluded.lat IS NULL THEN alerts.kecamatan ELSE excluded.kecamatan END,
    place = CASE WHEN excluded.lat IS NULL THEN alerts.place ELSE excluded.place END,
    trip_id = coalesce(excluded.trip_id, alerts.trip_id),
    crate_id = coalesce(excluded.crate_id, alerts.crate_id),
    updated_at = excluded.updated_at,
    last_ts = excluded.last_ts
WHERE alerts.details IS DISTINCT FROM excluded.details
   OR excluded.last_ts IS DISTINCT FROM coalesce(alerts.last_ts, alerts.ts)
   OR (excluded.lat IS NOT NULL
       AND (alerts.lat IS DISTINCT FROM excluded.lat OR alerts.lon IS DISTINCT FROM excluded.lon))
   OR (excluded.trip_id IS NOT NULL AND alerts.trip_id IS DISTINCT FROM excluded.trip_id)
   OR (excluded.crate_id IS NOT NULL AND alerts.crate_id IS DISTINCT FROM excluded.crate_id)
RETURNING *
"""


@dataclass(frozen=True, slots=True)
class PendingRaise:
    """A raise written in an open transaction, to publish after it commits."""

    change: tuple[int, Alert, str]  # (stream event id, the alert, its JSON)
    inserted: bool  # a new alert, not an update of the unresolved one
    reopened: bool = False  # a resolved alert opened again (the condition returned within the hold-off)


# Called inside the transaction of every alert change, after its event row is written: (connection, event id,
# alert, action, the Alert JSON, now). The notification outbox (notify/store.py) hooks in here, so a change
# and its deliveries commit together.
ChangeHook = Callable[[Connection, int, Alert, str, str, float], None]


class AlertNotFound(LookupError):
    pass


class AlertConflict(ValueError):
    """The change is not allowed in the alert's current status (e.g. acknowledging a resolved alert)."""


def new_alert_id(now: float) -> str:
    """A ULID-style id: 48 bits of milliseconds + 80 random bits, Crockford base32, 26 characters."""
    n = (int(now * 1000) & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_B32[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


class AlertStore(AlertQueries):
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        broadcaster: Broadcaster,
        metrics: Metrics,
        now: Callable[[], float] = time.time,
        places: Places | None = None,
        detection_clock: Callable[[], float] | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self.broadcaster = broadcaster
        self.metrics = metrics
        self._now = now
        # The detectors' clock (KAWAL_CLOCK: wall time, or the latest reading time), against which a returning
        # condition's hold-off is measured (alerts/reopen.py); without one, the events' own times.
        self.detection_clock = detection_clock
        # Every alert with a position carries its place (CONTRACT 2.3); by default the packaged boundaries.
        self.places = places if places is not None else load_places()
        self.change_hooks: builtins.list[ChangeHook] = []
        # Cluster mode: a partition's new owner replays from its snapshot, and may raise again an alert of
        # an episode (tracker, type, ts) that the previous owner raised and that has ended since.
        self.replay_guard = False

    # ---- changes -------------------------------------------------------------------------------

    def apply(self, ev: AlertEvent) -> Alert | None:
        """A detector's event. Returns the changed alert, or None when nothing changed."""
        if ev.action == AlertAction.RAISE:
            return self._raise(ev)
        if ev.type in NEVER_AUTO_RESOLVE:
            return None
        now = self._now()
        with self.db.write() as c:
            row = c.execute(
                f"SELECT * FROM alerts WHERE tracker_id = ? AND type = ? AND status != 'resolved'{self.db.row_lock}",
                (ev.tracker_id, str(ev.type)),
            ).fetchone()
            if row is None:
                return None
            reason = ev.details.get("reason") if isinstance(ev.details.get("reason"), str) else None
            change = self._transition(
                c,
                row,
                AlertStatus.RESOLVED,
                DETECTOR_ACTOR,
                "auto_resolve",
                reason,
                now,
                auto_resolved_ts=self.detected_at(ev),
            )
        return self._committed(change)

    def ack(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        """Acknowledge an open (or already acknowledged) alert. Raises AlertNotFound / AlertConflict."""
        return self._act(alert_id, actor, note, AlertStatus.ACKNOWLEDGED, "ack")

    def resolve(self, alert_id: str, actor: str, note: str | None = None) -> Alert:
        """Resolve an unresolved alert. Raises AlertNotFound / AlertConflict."""
        return self._act(alert_id, actor, note, AlertStatus.RESOLVED, "resolve")

    def _act(self, alert_id: str, actor: str, note: str | None, status: AlertStatus, action: str) -> Alert:
        now = self._now()
        with self.db.write() as c:
            row = c.execute(f"SELECT * FROM alerts WHERE id = ?{self.db.row_lock}", (alert_id,)).fetchone()
            if row is None:
                raise AlertNotFound(alert_id)
            if row["status"] == AlertStatus.RESOLVED:
                raise AlertConflict(f"alert {alert_id} is already resolved")
            change = self._transition(c, row, status, actor, action, note, now)
        return self._committed(change)

    def _raise(self, ev: AlertEvent) -> Alert | None:
        with self.db.write() as c:
            pending = self.raise_in(c, ev)
        return None if pending is None else self.publish(pending)

    def raise_in(self, c: Connection, ev: AlertEvent) -> PendingRaise | None:
        """A raise inside the caller's write transaction (so it commits with the caller's own rows, such as
        a handover). Hand the result to `publish` after the commit; None when the repeat changes nothing."""
        if self.replay_guard and self._replayed(c, ev):
            return None
        now = self._now()
        new_id = new_alert_id(now)
        lat, lon = (ev.lat, ev.lon) if ev.lat is not None and ev.lon is not None else (None, None)
        details = canonical_json(ev.details)
        place = self.places.lookup(lat, lon) if lat is not None else None
        kecamatan, place_json = place_columns(lat, place)
        reopened = reopen_in(
            c,
            self.db.row_lock,
            ev,
            self.detected_at(ev),
            now,
            details,
            (lat, lon, kecamatan, place_json),
            lambda row: _trim([*_history(row), _entry(now, DETECTOR_ACTOR, "reopen", AlertStatus.OPEN)]),
        )
        if reopened is not None:
            alert = _row_alert(reopened)
            return PendingRaise(self._record(c, alert, DETECTOR_ACTOR, "reopen", None, now), False, reopened=True)
        first = [_entry(now, DETECTOR_ACTOR, "raise", AlertStatus.OPEN)]
        row = c.execute(
            _UPSERT,
            (
                new_id,
                str(ev.type),
                str(SEVERITY[ev.type]),
                ev.trip_id,
                ev.crate_id,
                ev.tracker_id,
                ev.ts,
                now,
                now,
                lat,
                lon,
                details,
                json.dumps(first),
                ev.ts,
                kecamatan,
                place_json,
            ),
        ).fetchone()
        if row is None:
            return None  # a repeat that changes nothing
        inserted = row["id"] == new_id
        if inserted:
            alert = _row_alert(row)
            action = "raise"
        else:
            history = _history(row)
            last = history[-1] if history else None
            if last is not None and last.get("action") == "update":
                last["at"], last["count"] = rfc3339(now), int(last.get("count") or 1) + 1
            else:
                history.append(_entry(now, DETECTOR_ACTOR, "update", AlertStatus(row["status"]), count=1))
            history = _trim(history)
            c.execute("UPDATE alerts SET history = ? WHERE id = ?", (json.dumps(history), row["id"]))
            alert = _row_alert(row, history)
            action = "update"
        return PendingRaise(self._record(c, alert, DETECTOR_ACTOR, action, None, now), inserted)

    @staticmethod
    def _replayed(c: Connection, ev: AlertEvent) -> bool:
        """An episode (tracker, type, event time) that was raised and has ended already."""
        row = c.execute(
            "SELECT 1 FROM alerts WHERE tracker_id = ? AND type = ? AND status = 'resolved'"
            " AND (ts = ? OR last_ts = ?)",
            (ev.tracker_id, str(ev.type), ev.ts, ev.ts),
        ).fetchone()
        return row is not None

    def detected_at(self, ev: AlertEvent) -> float:
        """When the detectors saw this change, on their clock."""
        return self.detection_clock() if self.detection_clock is not None else ev.ts

    def publish(self, pending: PendingRaise) -> Alert:
        """Count and broadcast a raise from `raise_in`, once its transaction has committed."""
        if pending.inserted:
            alert_type = str(pending.change[1].type)
            self.metrics.alerts_raised.labels(type=alert_type).inc()
            self.metrics.alerts_changed.labels(type=alert_type, status="open").inc()
        return self._committed(pending.change, count=pending.reopened)

    def _transition(
        self,
        c: Connection,
        row: Any,
        status: AlertStatus,
        actor: str,
        action: str,
        note: str | None,
        now: float,
        auto_resolved_ts: float | None = None,
    ) -> tuple[int, Alert, str]:
        """`auto_resolved_ts`: the event time a detector resolved it at (which a returning condition is
        measured against); a person's change leaves it NULL."""
        history = _trim([*_history(row), _entry(now, actor, action, status, note=note)])
        c.execute(
            "UPDATE alerts SET status = ?, updated_at = ?, history = ?, auto_resolved_ts = ? WHERE id = ?",
            (str(status), now, json.dumps(history), auto_resolved_ts, row["id"]),
        )
        alert = _row_alert(row, history).model_copy(update={"status": status, "updated_at": rfc3339(now)})
        return self._record(c, alert, actor, action, note, now)

    def _record(
        self, c: Connection, alert: Alert, actor: str, action: str, note: str | None, now: float
    ) -> tuple[int, Alert, str]:
        """The event row (stream id) and the audit record of one change, in the caller's transaction."""
        data = alert.model_dump_json()
        event_id = int(
            c.execute(
                "INSERT INTO alert_events (alert_id, at, alert) VALUES (?, ?, ?) RETURNING event_id",
                (alert.id, now, data),
            ).fetchone()[0]
        )
        for hook in self.change_hooks:
            hook(c, event_id, alert, action, data, now)
        self.audit.append(
            c,
            actor,
            f"alert.{action}",
            f"alert:{alert.id}",
            {
                "type": str(alert.type),
                "status": str(alert.status),
                "tracker_id": alert.tracker_id,
                "trip_id": alert.trip_id,
                "crate_id": alert.crate_id,
                "ts": alert.ts,
                "lat": alert.lat,
                "lon": alert.lon,
                "details": alert.details,
                "note": note,
                "event_id": event_id,
            },
        )
        return event_id, alert, data

    def _committed(self, change: tuple[int, Alert, str], count: bool = True) -> Alert:
        event_id, alert, data = change
        if count:
            self.metrics.alerts_changed.labels(type=str(alert.type), status=str(alert.status)).inc()
        try:
            self.broadcaster.publish(event_id, alert, data)
        except Exception:  # the change is stored; streams catch up from alert_events
            log.exception("could not publish alert change %d", event_id)
        return alert

    def fill_places(self) -> int:
        """Compute the place of stored alerts that have a position but none yet (older alerts); how many."""
        return fill_places(self.db, self.places)


def _entry(
    now: float,
    actor: str,
    action: str,
    status: AlertStatus,
    note: str | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    e: dict[str, Any] = {"at": rfc3339(now), "actor": actor, "action": action, "status": str(status)}
    if note:
        e["note"] = note
    if count is not None:
        e["count"] = count
    return e


def _trim(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first entry (who raised it) and the newest ones."""
    if len(history) <= HISTORY_LIMIT:
        return list(history)
    return [history[0], *history[-(HISTORY_LIMIT - 1) :]]
