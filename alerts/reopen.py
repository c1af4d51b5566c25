"""A condition that returns soon after the detectors resolved it reopens the same alert (history `reopen`).

Without this, a signal that flaps at every tick, or a tracker uploading an old backlog in bursts, raises and
resolves a new alert each time: 141 alerts in 35 s for 5 crates. The hold-off (ALERT_REOPEN_HOLD_OFF_S,
anomaly/config.py) is measured on the detectors' clock (KAWAL_CLOCK: wall time, or the latest reading time),
from the resolution to the new raise, so a replay or a sped-up simulation counts its own minutes, not the
server's. Only what a detector resolved is reopened; an alert a person resolved stays closed, and a return
raises a new one.
"One unresolved alert per (tracker, type)" still holds: a reopen happens only when none is unresolved, under
the row lock of the alert it reopens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from alerts.model import NEVER_AUTO_RESOLVE, AlertEvent
from anomaly.config import ALERT_REOPEN_HOLD_OFF_S
from storage import Connection

_REOPEN = (
    "UPDATE alerts SET status = 'open', updated_at = ?, last_ts = ?, details = ?, lat = ?, lon = ?, kecamatan = ?,"
    " place = ?, trip_id = ?, crate_id = ?, auto_resolved_ts = NULL, history = ?"
    " WHERE id = ? AND status = 'resolved' RETURNING *"
)


def reopen_in(
    c: Connection,
    row_lock: str,
    ev: AlertEvent,
    detected_at: float,
    now: float,
    details: str,
    where: tuple[Any, Any, Any, Any],
    history: Callable[[Any], list[dict[str, Any]]],
) -> Any | None:
    """Reopen, in the caller's transaction, the latest alert of `ev`'s tracker and type if a detector resolved
    it at most the hold-off before `detected_at` (both on the detectors' clock); the updated row, or None when
    a new alert (or an update of the unresolved one) is due. `where` is (lat, lon, kecamatan, place) of the
    raise, `history(row)` the new history with the reopen entry."""
    if ev.type in NEVER_AUTO_RESOLVE:
        return None
    key = (ev.tracker_id, str(ev.type))
    if c.execute("SELECT id FROM alerts WHERE tracker_id = ? AND type = ? AND status != 'resolved'", key).fetchone():
        return None  # the upsert updates it
    # Locked, so of two writers racing to reopen it one wins; the other then finds it open and updates it.
    row = c.execute(
        "SELECT * FROM alerts WHERE tracker_id = ? AND type = ? AND status = 'resolved'"
        f" ORDER BY updated_at DESC, id DESC LIMIT 1{row_lock}",
        key,
    ).fetchone()
    if row is None or row["auto_resolved_ts"] is None:
        return None  # none yet, or a person resolved it
    if detected_at > float(row["auto_resolved_ts"]) + ALERT_REOPEN_HOLD_OFF_S:
        return None
    lat, lon, kecamatan, place = (
        where if where[0] is not None else (row["lat"], row["lon"], row["kecamatan"], row["place"])
    )
    trip_id = ev.trip_id if ev.trip_id is not None else row["trip_id"]
    crate_id = ev.crate_id if ev.crate_id is not None else row["crate_id"]
    args = (now, ev.ts, details, lat, lon, kecamatan, place, trip_id, crate_id, json.dumps(history(row)), row["id"])
    return c.execute(_REOPEN, args).fetchone()
