"""Seals and leg links in trip manifests, and `kawal custody export` of a kecamatan's receipts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.custody import HandoverIn
from api.manifest import ManifestError, import_trips, parse_manifest
from api.routers.custody import custody_store
from kawal.audit import AuditLog
from storage.sqlite import SqliteDatabase
from tests.api_harness import make_harness

HEADER = (
    "trip_id,crate_id,tracker_id,origin_name,origin_lat,origin_lon,destination_name,destination_lat,"
    "destination_lon,destination_kecamatan,route,depart_after,arrive_by,seals,previous_trip_id,direction"
)


def _row(
    trip: str, crate: str, dest: tuple[str, float, float], seals: str, prev: str = "", way: str = "", kec: str = ""
) -> str:
    name, lat, lon = dest
    return (
        f"{trip},{crate},TRK-{crate},Gudang KPU Jombang,-7.5460,112.2330,{name},{lat},{lon},{kec},"
        f'"-7.5460 112.2330; {lat} {lon}",2024-11-20T07:00:00+07:00,2024-11-20T10:00:00+07:00,{seals},{prev},{way}'
    )


PPK_DIWEK = ("PPK Diwek", -7.5850, 112.2300)  # inside kecamatan Diwek by the packaged boundaries
PPK_KESAMBEN = ("PPK Kesamben", -7.4500, 112.3000)


def test_csv_and_geojson_manifests_carry_seals_and_links() -> None:
    text = "\n".join(
        [
            HEADER,
            _row("A-1", "C-A", PPK_DIWEK, "KPU-1;KPU-2"),
            _row("A-2", "C-A", PPK_DIWEK, '["KPPS-9"]', "A-1", "return"),
        ]
    )
    (_, first), (_, second) = parse_manifest(text, "csv")
    assert first.seals == ["KPU-1", "KPU-2"] and first.direction == "outbound" and first.previous_trip_id is None
    assert second.seals == ["KPPS-9"] and second.direction == "return" and second.previous_trip_id == "A-1"
    feature = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[112.233, -7.546], [112.23, -7.585]]},
        "properties": {
            "trip_id": "G-1",
            "crate_id": "C-G",
            "tracker_id": "TRK-G",
            "origin": {"name": "Gudang", "lat": -7.546, "lon": 112.233},
            "destination": {"name": "PPK Diwek", "lat": -7.585, "lon": 112.23},
            "depart_after": 1_732_060_800,
            "arrive_by": 1_732_071_600,
            "seals": ["KPU-7"],
            "previous_trip_id": "F-0",
            "direction": "outbound",
        },
    }
    [(_, g)] = parse_manifest(json.dumps({"type": "FeatureCollection", "features": [feature]}), "geojson")
    assert g.seals == ["KPU-7"] and g.previous_trip_id == "F-0"
    bad = "\n".join(
        [HEADER, _row("B-1", "C-B", PPK_DIWEK, "KPU-1", "B-1"), _row("B-2", "C-B", PPK_DIWEK, "", "", "up")]
    )
    with pytest.raises(ManifestError) as e:
        parse_manifest(bad, "csv")
    assert [w for w, _ in e.value.problems] == ["line 2", "line 3"]
    assert "itself" in e.value.problems[0][1] and "direction" in e.value.problems[1][1]


def test_custody_export_writes_the_receipts_of_a_kecamatan(tmp_path: Path) -> None:
    db_path = tmp_path / "kawal.db"
    h = make_harness(tmp_path, db=SqliteDatabase(db_path))
    text = "\n".join(
        [
            HEADER,
            _row("D-1", "C-D1", PPK_DIWEK, "KPU-1"),  # Diwek by the boundaries
            # Its destination names its kecamatan itself, which wins over the boundaries (Kesamben).
            _row("D-2", "C-D2", ("Gudang Logistik", -7.4500, 112.3000), "KPU-2", kec="Diwek"),
            _row("K-1", "C-K1", PPK_KESAMBEN, "KPU-3"),
        ]
    )
    import_trips(h.ctx.db, parse_manifest(text, "csv"), actor="test", audit=AuditLog(h.ctx.db))
    ho, _ = custody_store(h.ctx).record("D-1", HandoverIn.model_validate({"receiver": {"name": "Budi"}}), "test-op")
    out = tmp_path / "arsip"
    env = {**os.environ, "KAWAL_DB": str(db_path)}
    r = subprocess.run(
        [sys.executable, "-m", "kawal", "custody", "export", "--kecamatan", "Diwek", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "receipts Diwek" in r.stderr and "2/2" in r.stderr  # the progress bar
    assert sorted(p.name for p in out.iterdir()) == ["C-D1.html", "C-D2.html", "index.json"]
    index = json.loads((out / "index.json").read_text())
    assert [c["crate_id"] for c in index["crates"]] == ["C-D1", "C-D2"]
    assert index["crates"][0]["handovers"] == [{"trip_id": "D-1", "id": ho.id, "audit_hash": ho.audit_hash}]
    assert ho.audit_hash in (out / "C-D1.html").read_text()
    none = subprocess.run(
        [sys.executable, "-m", "kawal", "custody", "export", "--kecamatan", "Wonosalam", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert none.returncode == 1 and "no crates bound for kecamatan 'Wonosalam'" in none.stderr
