"""`kawal custody export`: the custody receipts of one sub-district (kecamatan), for the Bawaslu archive.

A crate belongs to the kecamatan of one of its trips' destinations: the destination's own `kecamatan`
field when the manifest gives one, else the kecamatan whose boundary contains the destination
(kawal/places.py, KAWAL_BOUNDARIES or the packaged Jombang boundaries). Each receipt is written as
``<crate_id>.html``, with ``index.json`` listing the crates and the audit hash of every handover.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from tqdm import tqdm

from alerts.broadcast import Broadcaster
from alerts.store import AlertStore
from api.commands import DB_OPTION, _open
from api.custody import CustodyStore
from api.custody_view import custody as custody_legs
from api.receipt import render_receipt
from kawal.audit import AuditLog
from kawal.metrics import Metrics
from kawal.places import Places, PlacesError, load_places
from kawal.trips import Trip, TripRepository


def _matches(trip: Trip, wanted: str, places: Places | None) -> bool:
    dest = trip.destination
    extra = (dest.model_extra or {}).get("kecamatan")
    if isinstance(extra, str) and extra.strip():
        return extra.strip().casefold() == wanted
    if places is None:
        return False
    place = places.lookup(dest.lat, dest.lon)
    return place is not None and wanted in (place["kecamatan"].casefold(), place["kecamatan_code"].casefold())


def crates_in(trips: list[Trip], kecamatan: str, places: Places | None) -> list[str]:
    """The crates with a trip whose destination lies in `kecamatan` (name or code, any case), by id."""
    wanted = kecamatan.strip().casefold()
    return sorted({t.crate_id for t in trips if _matches(t, wanted, places)})


@click.group()
def custody() -> None:
    """Chain of custody: receipts for the archive."""


@custody.command("export")
@click.option("--kecamatan", required=True, help="the sub-district, by name or code (e.g. Diwek)")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@DB_OPTION
@click.option("--boundaries", envvar="KAWAL_BOUNDARIES", help="GeoJSON boundaries (default: packaged Jombang)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def export(kecamatan: str, out_dir: Path, db_path: str, boundaries: str | None, quiet: bool) -> None:
    """Write the custody receipt of every crate bound for KECAMATAN into OUT, as <crate_id>.html, and
    index.json with each crate's handovers and their audit hashes."""
    db = _open(db_path)
    trips = TripRepository(db)
    try:
        places: Places | None = load_places(boundaries)
    except (PlacesError, OSError) as e:
        click.echo(f"boundaries unavailable ({e}); only trips naming their kecamatan are matched", err=True)
        places = None
    crates = crates_in(trips.list(), kecamatan, places)
    if not crates:
        raise click.ClickException(f"no crates bound for kecamatan {kecamatan!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(db)
    alerts = AlertStore(db, audit, Broadcaster(), Metrics())
    store = CustodyStore(db, trips, alerts)
    index = []
    now = time.time()
    for crate_id in tqdm(crates, desc=f"receipts {kecamatan}", unit="crate", disable=quiet):
        legs = custody_legs(db, trips, alerts, store, crate_id)
        if legs is None:
            continue
        (out_dir / f"{crate_id}.html").write_text(render_receipt(crate_id, legs, db, now), encoding="utf-8")
        index.append(
            {
                "crate_id": crate_id,
                "file": f"{crate_id}.html",
                "legs": [leg.trip.trip_id for leg in legs],
                "handovers": [
                    {"trip_id": leg.trip.trip_id, "id": leg.handover.id, "audit_hash": leg.handover.audit_hash}
                    for leg in legs
                    if leg.handover is not None
                ],
                "flags": sorted({f for leg in legs for f in leg.flags}),
            }
        )
    (out_dir / "index.json").write_text(
        json.dumps({"kecamatan": kecamatan, "generated_at": now, "crates": index}, indent=2), encoding="utf-8"
    )
    click.echo(f"wrote {len(index)} receipt(s) for kecamatan {kecamatan} into {out_dir}")
