"""The reads of the alert store (alerts/store.py): one alert, filtered lists, open counts, the change log."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable
from typing import Any

from alerts.model import Alert, AlertHistoryEntry, AlertStatus, AlertType
from alerts.places import row_place
from kawal.places import Places
from kawal.timeutil import rfc3339
from storage import Database


class AlertQueries:
    """Reads of the `alerts` and `alert_events` tables; AlertStore adds the changes."""

    db: Database
    places: Places

    def get(self, alert_id: str) -> Alert | None:
        row = self.db.conn().execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else row_alert(row)

    def list(
        self,
        trip_id: str | None = None,
        crate_id: str | None = None,
        tracker_id: str | None = None,
        types: Iterable[AlertType | str] | None = None,
        statuses: Iterable[AlertStatus | str] | None = None,
        since: float | None = None,
        limit: int = 100,
        until: float | None = None,
        kecamatan: Iterable[str] | None = None,
    ) -> list[Alert]:
        """Newest first (by raised_at). `since`/`until` bound raised_at (inclusive / exclusive). `kecamatan`
        takes names or area codes of the alerts' places, in any case."""
        where: list[str] = []
        args: list[Any] = []
        for col, val in (("trip_id", trip_id), ("crate_id", crate_id), ("tracker_id", tracker_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        for col, vals in (("type", types), ("status", statuses)):
            if vals is not None:
                items = sorted({str(v) for v in vals})
                if items:
                    where.append(f"{col} IN ({','.join('?' * len(items))})")
                    args.extend(items)
        if kecamatan is not None:
            names = sorted({self.kecamatan_name(k) for k in kecamatan})
            if names:
                where.append(f"kecamatan IN ({','.join('?' * len(names))})")
                args.extend(names)
        if since is not None:
            where.append("raised_at >= ?")
            args.append(since)
        if until is not None:
            where.append("raised_at < ?")
            args.append(until)
        q = "SELECT * FROM alerts"
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY raised_at DESC, id DESC LIMIT ?"
        args.append(limit)
        return [row_alert(r) for r in self.db.conn().execute(q, args)]

    def open_counts(self) -> dict[str, int]:
        """Unresolved alerts per tracker."""
        rows = self.db.conn().execute(
            "SELECT tracker_id, count(*) FROM alerts WHERE status != 'resolved' GROUP BY tracker_id"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def open_by_type(self) -> dict[str, int]:
        rows = self.db.conn().execute("SELECT type, count(*) FROM alerts WHERE status != 'resolved' GROUP BY type")
        return {str(r[0]): int(r[1]) for r in rows}

    def kecamatan_name(self, name_or_code: str) -> str:
        """The stored name of a kecamatan given by name or code; an unknown value stays as it is."""
        area = self.places.find_kecamatan(name_or_code)
        return name_or_code if area is None else area.name

    def open_by_kecamatan(self) -> dict[str, int]:
        """Unresolved alerts per kecamatan of their place (alerts without a place are not counted)."""
        rows = self.db.conn().execute(
            "SELECT kecamatan, count(*) FROM alerts WHERE status != 'resolved' AND kecamatan IS NOT NULL "
            "GROUP BY kecamatan"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def events_after(self, event_id: int, limit: int = 500) -> builtins.list[tuple[int, Alert]]:
        return [(i, Alert.model_validate_json(data)) for i, data in self.events_after_raw(event_id, limit)]

    def events_after_raw(self, event_id: int, limit: int = 500) -> builtins.list[tuple[int, str]]:
        """Changes after `event_id`, oldest first, with the Alert JSON exactly as it was streamed."""
        rows = self.db.conn().execute(
            "SELECT event_id, alert FROM alert_events WHERE event_id > ? ORDER BY event_id LIMIT ?",
            (event_id, limit),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def last_event_id(self) -> int:
        row = self.db.conn().execute("SELECT coalesce(max(event_id), 0) FROM alert_events").fetchone()
        return int(row[0])


def row_history(row: Any) -> list[dict[str, Any]]:
    try:
        h = json.loads(row["history"] or "[]")
    except ValueError:
        return []
    return h if isinstance(h, list) else []


def row_alert(row: Any, history: list[dict[str, Any]] | None = None) -> Alert:
    entries = row_history(row) if history is None else history
    return Alert(
        id=row["id"],
        type=AlertType(row["type"]),
        severity=row["severity"],
        status=AlertStatus(row["status"]),
        trip_id=row["trip_id"],
        crate_id=row["crate_id"],
        tracker_id=row["tracker_id"],
        ts=rfc3339(row["ts"]) or "",
        raised_at=rfc3339(row["raised_at"]) or "",
        lat=row["lat"],
        lon=row["lon"],
        details=json.loads(row["details"] or "{}"),
        place=row_place(row),
        updated_at=rfc3339(row["updated_at"]),
        last_ts=rfc3339(row["last_ts"]),
        history=[AlertHistoryEntry.model_validate(h) for h in entries],
    )
