"""A crate's chain of custody (CONTRACT 2.6): its legs in time order, each with its trip, its handover,
its seal events and its alerts; the custody listing and the receipt are both made from it.

A leg's window runs from its `depart_after` to the next leg's (the first leg from the beginning), so what
happens in storage between two legs belongs to the leg that brought the crate there.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from alerts.model import Alert
from alerts.store import AlertStore
from api.custody import CustodyStore, Handover, check_seals
from kawal.timeutil import rfc3339
from kawal.trips import Trip, TripRepository
from storage import Database

FLAG_SEAL_CHANGE = "seal_change_without_handover"
FLAG_BROKEN_LINK = "previous_leg_unknown"
FLAG_NOT_LINKED = "not_linked"
ALERTS_PER_LEG = 1000


class SealEvent(BaseModel):
    ts: str
    seal: str = Field(..., description="closed, open or tampered: a change of the seal sensor's state")


class CustodyLeg(BaseModel):
    trip: Trip
    handover: Handover | None
    seal_events: list[SealEvent]
    alerts: list[Alert]
    flags: list[str] = Field(
        default_factory=list,
        description="seal_change_without_handover: this leg's seals differ from the previous leg's, which "
        "nobody signed for; previous_leg_unknown: previous_trip_id names no trip of this crate; not_linked: "
        "a later leg that names no previous leg",
    )


class CustodyList(BaseModel):
    items: list[CustodyLeg]


def custody(
    db: Database, trips: TripRepository, alerts: AlertStore, store: CustodyStore, crate_id: str
) -> list[CustodyLeg] | None:
    """The crate's legs in time order, or None when the crate has no trips."""
    legs = trips.list(crate_id=crate_id)
    if not legs:
        return None
    handovers = {h.trip_id: h for h in store.for_crate(crate_id)}
    by_id = {t.trip_id: t for t in legs}
    out: list[CustodyLeg] = []
    for i, trip in enumerate(legs):
        start = -math.inf if i == 0 else trip.depart_after
        end = legs[i + 1].depart_after if i + 1 < len(legs) else math.inf
        handover = handovers.get(trip.trip_id)
        leg_alerts = alerts.list(trip_id=trip.trip_id, limit=ALERTS_PER_LEG)
        if handover is not None and handover.alert_id and all(a.id != handover.alert_id for a in leg_alerts):
            extra = alerts.get(handover.alert_id)  # a later mismatch of the same tracker updated it
            if extra is not None:
                leg_alerts.append(extra)
        leg_alerts.sort(key=lambda a: (a.ts, a.id))
        out.append(
            CustodyLeg(
                trip=trip,
                handover=handover,
                seal_events=seal_events(db, trip.tracker_id, start, end),
                alerts=leg_alerts,
                flags=_flags(trip, i, by_id, handovers),
            )
        )
    return out


def _flags(trip: Trip, i: int, by_id: dict[str, Trip], handovers: dict[str, Handover]) -> list[str]:
    flags: list[str] = []
    if trip.previous_trip_id is None:
        if i > 0:
            flags.append(FLAG_NOT_LINKED)
        return flags
    prev = by_id.get(trip.previous_trip_id)
    if prev is None:
        flags.append(FLAG_BROKEN_LINK)
        return flags
    changed = bool(prev.seals and trip.seals) and check_seals(prev.seals, trip.seals or []).match is False
    if changed and prev.trip_id not in handovers:
        flags.append(FLAG_SEAL_CHANGE)
    return flags


def seal_events(db: Database, tracker_id: str, start: float, end: float) -> list[SealEvent]:
    """Each change of the seal sensor's state in [start, end), the first reported state included. The
    changes are picked in SQL (LAG), so a long leg's thousands of `closed` readings stay in the database."""
    args: list[Any] = [tracker_id]
    where = "tracker_id = ? AND seal IS NOT NULL"
    if math.isfinite(start):
        where += " AND ts >= ?"
        args.append(start)
    if math.isfinite(end):
        where += " AND ts < ?"
        args.append(end)
    q = (
        "SELECT ts, seal FROM (SELECT ts, seq, seal, LAG(seal) OVER (ORDER BY ts, seq) AS prev"
        f" FROM readings WHERE {where}) changes WHERE prev IS NULL OR prev <> seal ORDER BY ts, seq"
    )
    return [SealEvent(ts=rfc3339(float(row[0])) or "", seal=str(row[1])) for row in db.conn().execute(q, args)]
