"""How an alert's place (CONTRACT 2.3, version 2; kawal/places.py) is stored: migration 0030_places."""

from __future__ import annotations

import json
from typing import Any

from kawal.places import Place, Places
from storage import Database


def place_columns(lat: float | None, place: Place | None) -> tuple[str | None, str | None]:
    """The (kecamatan, place) columns: NULL without a position, the JSON 'null' outside every area."""
    if lat is None:
        return None, None
    return (place["kecamatan"] if place else None), json.dumps(place)


def row_place(row: Any) -> Place | None:
    try:
        place = json.loads(row["place"] or "null")
    except ValueError:
        return None
    return place if isinstance(place, dict) else None  # type: ignore[return-value]


def fill_places(db: Database, places: Places) -> int:
    """Give stored alerts with a position but no place yet (stored before places existed) their place."""
    rows = (
        db.conn()
        .execute("SELECT id, lat, lon FROM alerts WHERE lat IS NOT NULL AND lon IS NOT NULL AND place IS NULL")
        .fetchall()
    )
    if not rows:
        return 0
    with db.write() as c:
        for r in rows:
            kecamatan, place_json = place_columns(r["lat"], places.lookup(r["lat"], r["lon"]))
            c.execute(
                "UPDATE alerts SET kecamatan = ?, place = ? WHERE id = ? AND place IS NULL",
                (kecamatan, place_json, r["id"]),
            )
    return len(rows)
