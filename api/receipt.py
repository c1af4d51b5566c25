"""The printable custody receipt of a crate (CONTRACT 2.6): one self-contained HTML page.

Legs, the map of planned routes against the track (inline SVG), the seal history (the numbers planned
and read at each handover, and the seal sensor's changes), every alert with how it was resolved, and each
handover with its audit hash, which `kawal audit verify --hash` confirms. The page has no script and
loads nothing, so a saved copy and its print are the same document years later.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from alerts.model import Alert
from api.custody_view import CustodyLeg
from api.receipt_map import MapLeg, SvgMap, draw
from kawal import __version__
from kawal.timeutil import rfc3339
from storage import Database

TEMPLATES = Path(__file__).resolve().parent / "templates"
TRACK_LIMIT = 100_000
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class SealRow:
    at: str
    leg: int
    source: str  # planned | read | sensor
    what: str
    ok: bool | None = None


def when(value: float | str | None) -> str:
    """RFC 3339 UTC for the page (times stay unambiguous on paper)."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else rfc3339(value) or "-"


def short(value: float | str | None) -> str:
    """A compact UTC time for table cells: 2024-11-20 07:15:00Z."""
    text = when(value)
    return text.replace("T", " ").replace(".000Z", "Z")


def resolution(alert: Alert) -> str:
    """How the alert ended: who resolved it, when and why; or its current status."""
    for entry in reversed(alert.history):
        if entry.action in ("resolve", "auto_resolve"):
            note = f": {entry.note}" if entry.note else ""
            return f"{entry.action} by {entry.actor} at {entry.at}{note}"
    for entry in reversed(alert.history):
        if entry.action == "ack":
            note = f": {entry.note}" if entry.note else ""
            return f"acknowledged by {entry.actor} at {entry.at}{note} (not resolved)"
    return str(alert.status)


def seal_rows(legs: list[CustodyLeg]) -> list[SealRow]:
    rows: list[SealRow] = []
    for i, leg in enumerate(legs, start=1):
        trip = leg.trip
        if trip.seals:
            rows.append(SealRow(when(trip.depart_after), i, "planned", ", ".join(trip.seals)))
        for ev in leg.seal_events:
            rows.append(SealRow(ev.ts, i, "sensor", ev.seal, ev.seal == "closed"))
        if leg.handover is not None:
            ho = leg.handover
            rows.append(SealRow(ho.at, i, "read", ", ".join(ho.seals) or "(none)", ho.seals_match))
    rows.sort(key=lambda r: (r.at, r.leg))
    return rows


def leg_track(db: Database, tracker_id: str, start: float, end: float | None) -> list[tuple[float, float]]:
    """[lat, lon] of the leg's usable fixes in time order: only the two columns the map draws."""
    q = (
        "SELECT lat, lon FROM readings WHERE tracker_id = ? AND lat IS NOT NULL AND lon IS NOT NULL"
        " AND NOT (lat = 0 AND lon = 0) AND ts >= ?"
    )
    args: list[Any] = [tracker_id, start]
    if end is not None:
        q += " AND ts <= ?"
        args.append(end)
    q += " ORDER BY ts, seq LIMIT ?"
    args.append(TRACK_LIMIT)
    return [(float(r[0]), float(r[1])) for r in db.conn().plain_cursor().execute(q, args)]


def receipt_map(legs: list[CustodyLeg], db: Database) -> SvgMap | None:
    out: list[MapLeg] = []
    for i, leg in enumerate(legs):
        trip = leg.trip
        end = trip.handover_at
        if end is None and i + 1 < len(legs):
            end = legs[i + 1].trip.depart_after
        track = leg_track(db, trip.tracker_id, trip.depart_after, end)
        pos = leg.handover.position if leg.handover is not None else None
        out.append(
            MapLeg(
                label=f"{i + 1}. {trip.origin.name} → {trip.destination.name}",
                route=[list(p) for p in trip.route],
                track=track,
                origin=(trip.origin.lat, trip.origin.lon, trip.origin.radius_m),
                destination=(trip.destination.lat, trip.destination.lon, trip.destination.radius_m),
                handover=None if pos is None else (pos.lat, pos.lon),
                handover_ok=leg.handover is not None
                and leg.handover.in_destination
                and leg.handover.seals_match is not False,
            )
        )
    return draw(out)


def render_receipt(crate_id: str, legs: list[CustodyLeg], db: Database, now: float | None = None) -> str:
    alerts = sorted(
        {a.id: (i, a) for i, leg in enumerate(legs, start=1) for a in leg.alerts}.values(),
        key=lambda p: (p[1].ts, p[1].id),
    )
    handovers = [(i, leg) for i, leg in enumerate(legs, start=1) if leg.handover is not None]
    template = _env.get_template("receipt.html")
    return template.render(
        crate_id=crate_id,
        legs=legs,
        handovers=handovers,
        alerts=alerts,
        seal_rows=seal_rows(legs),
        map=receipt_map(legs, db),
        resolution=resolution,
        when=when,
        short=short,
        generated_at=when(time.time() if now is None else now),
        version=__version__,
        fmt_m=_fmt_m,
    )


def _fmt_m(value: Any) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value / 1000:.2f} km" if value >= 1000 else f"{value:.0f} m"
