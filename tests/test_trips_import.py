"""`kawal trips import`: CSV and GeoJSON manifests, all-or-nothing with line numbers; `kawal token create`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.auth import Role, TokenStore
from api.manifest import ManifestError, import_trips, parse_manifest, parse_route
from kawal.audit import AuditLog
from kawal.cli import cli
from kawal.trips import TripRepository
from tests.backends import Backend

HEADER = (
    "trip_id,crate_id,tracker_id,origin_name,origin_lat,origin_lon,destination_name,destination_lat,"
    "destination_lon,destination_radius_m,destination_open_after,route,depart_after,arrive_by,corridor_m,"
    "stops,district"
)
ROW_WKT = (
    "T-1,JBG-KS-0001,TRK-0001,Gudang KPU Jombang,-7.5460,112.2330,PPK Diwek,-7.5850,112.2300,120,"
    '2024-11-27T06:00:00+07:00,"LINESTRING (112.2330 -7.5460, 112.2310 -7.5600, 112.2300 -7.5850)",'
    "2024-11-20T07:00:00+07:00,2024-11-20T10:00:00+07:00,250,"
    '"[{""name"": ""Pos Polisi Diwek"", ""lat"": -7.57, ""lon"": 112.2305}]",Diwek'
)
ROW_LATLON = (
    "T-2,JBG-KS-0002,TRK-0002,Gudang KPU Jombang,-7.5460,112.2330,PPK Ploso,-7.4500,112.2400,,,"
    '"-7.5460 112.2330; -7.5000 112.2350; -7.4500 112.2400",1732060800,1732071600,,,Ploso'
)


def _csv(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def test_route_formats() -> None:
    assert parse_route("LINESTRING(112.2 -7.5, 112.3 -7.6)") == [[-7.5, 112.2], [-7.6, 112.3]]
    assert parse_route("linestring z (112.2 -7.5 10, 112.3 -7.6 12)") == [[-7.5, 112.2], [-7.6, 112.3]]
    assert parse_route("-7.5 112.2; -7.6 112.3") == [[-7.5, 112.2], [-7.6, 112.3]]
    assert parse_route("-7.5,112.2|-7.6,112.3") == [[-7.5, 112.2], [-7.6, 112.3]]


def test_csv_import(backend: Backend) -> None:
    items = parse_manifest(_csv(ROW_WKT, "", ROW_LATLON), filename="m.csv")
    assert [i for i, _ in items] == ["T-1", "T-2"]
    db = backend.open()
    result = import_trips(db, items, actor="cli:budi")
    assert (result.created, result.updated) == (2, 0)
    t1 = TripRepository(db).get("T-1")
    assert t1 is not None
    assert t1.route == [(-7.546, 112.233), (-7.56, 112.231), (-7.585, 112.23)]
    assert t1.destination.radius_m == 120 and t1.destination.open_after == 1_732_662_000.0
    assert t1.corridor_m == 250 and t1.stops[0].name == "Pos Polisi Diwek"
    assert (t1.model_extra or {})["district"] == "Diwek"
    t2 = TripRepository(db).get("T-2")
    assert t2 is not None and t2.corridor_m == 200 and t2.destination.radius_m == 150  # defaults
    records = AuditLog(db).records()
    assert [(r.actor, r.action, r.subject) for r in records] == [
        ("cli:budi", "trip.create", "trip:T-1"),
        ("cli:budi", "trip.create", "trip:T-2"),
    ]
    assert records[0].data["source"] == "import" and records[0].data["crate_id"] == "JBG-KS-0001"
    again = import_trips(db, parse_manifest(_csv(ROW_WKT)), actor="cli:budi")
    assert (again.created, again.updated) == (0, 1)


def test_bad_rows_are_named_and_nothing_is_imported(backend: Backend, tmp_path: Path) -> None:
    bad_time = ROW_LATLON.replace("T-2,", "T-3,").replace("1732060800,1732071600", "1732071600,1732060800")
    bad_route = ROW_LATLON.replace("T-2,", "T-4,").replace("-7.5000 112.2350", "-97.5 112.2350")
    one_point = ROW_LATLON.replace("T-2,", "T-5,").replace(
        '"-7.5460 112.2330; -7.5000 112.2350; -7.4500 112.2400"', '"-7.5460 112.2330"'
    )
    text = _csv(ROW_WKT, bad_time, ROW_LATLON, bad_route, one_point, ROW_WKT)
    with pytest.raises(ManifestError) as e:
        parse_manifest(text, "csv")
    where = [w for w, _ in e.value.problems]
    assert where == ["line 3", "line 5", "line 6", "line 7"]
    messages = dict(e.value.problems)
    assert "arrive_by must come after depart_after" in messages["line 3"]
    assert "out of range" in messages["line 5"]
    assert "route" in messages["line 6"]
    assert "repeated (first at line 2)" in messages["line 7"]

    # Through the command: every problem printed, exit code 1, the database untouched.
    path = tmp_path / "manifest.csv"
    path.write_text(text)
    out = CliRunner().invoke(cli, ["trips", "import", str(path), "--db", backend.target])
    assert out.exit_code == 1
    assert f"{path}: line 3: " in out.output and f"{path}: line 7: " in out.output
    assert "nothing was imported" in out.output
    assert TripRepository(backend.open()).list() == []


def test_multiline_cells_keep_line_numbers() -> None:
    quoted = ROW_LATLON.replace('"-7.5460 112.2330; -7.5000', '"-7.5460 112.2330;\n-7.5000')
    bad = ROW_LATLON.replace("T-2,", "T-9,").replace("1732060800,", "soon,")
    with pytest.raises(ManifestError) as e:
        parse_manifest(_csv(quoted, bad), "csv")
    assert [w for w, _ in e.value.problems] == ["line 4"]


def test_header_problems() -> None:
    with pytest.raises(ManifestError, match="lacks the column"):
        parse_manifest("trip_id,crate_id\nT-1,C-1\n", "csv")
    with pytest.raises(ManifestError, match="empty"):
        parse_manifest("", "csv")
    with pytest.raises(ManifestError) as e:
        parse_manifest(_csv("T-1,too,few"), "csv")
    assert e.value.problems[0][0] == "line 2" and "cells" in e.value.problems[0][1]


def _feature(trip_id: str, coords: list[list[float]], **props: object) -> dict[str, object]:
    base: dict[str, object] = {
        "trip_id": trip_id,
        "crate_id": f"C-{trip_id}",
        "tracker_id": f"TRK-{trip_id}",
        "origin": {"name": "Gudang KPU Jombang", "lat": -7.546, "lon": 112.233},
        "destination_name": "PPS Kayangan",
        "destination_lat": -7.59,
        "destination_lon": 112.22,
        "depart_after": "2024-11-21T07:00:00+07:00",
        "arrive_by": "2024-11-21T09:00:00+07:00",
        "max_stop_min": 5,
    }
    base.update(props)
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}, "properties": base}


def test_geojson_import(backend: Backend, tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            _feature("G-1", [[112.233, -7.546], [112.22, -7.59]], district="Diwek"),
            _feature("G-2", [[112.233, -7.546, 35.0], [112.23, -7.56], [112.22, -7.59]]),
        ],
    }
    path = tmp_path / "manifest.geojson"
    path.write_text(json.dumps(doc))
    out = CliRunner().invoke(cli, ["trips", "import", str(path), "--db", backend.target, "--actor", "ops-kpu"])
    assert out.exit_code == 0, out.output
    assert "imported 2 trip(s)" in out.output and "2 created, 0 replaced" in out.output
    repo = TripRepository(backend.open())
    g1 = repo.get("G-1")
    assert g1 is not None and g1.route == [(-7.546, 112.233), (-7.59, 112.22)]  # [lon, lat] -> [lat, lon]
    assert g1.destination.name == "PPS Kayangan" and g1.max_stop_min == 5
    assert [r.actor for r in AuditLog(backend.open()).records()] == ["ops-kpu", "ops-kpu"]


def test_geojson_bad_features_by_index() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            _feature("G-1", [[112.233, -7.546], [112.22, -7.59]]),
            _feature("G-2", [[112.233, -7.546]]),  # one point
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [112.2, -7.5]},
                "properties": {},
            },
            _feature("G-4", [[112.233, -7.546], [112.22, -7.59]], tracker_id="bad id"),
        ],
    }
    with pytest.raises(ManifestError) as e:
        parse_manifest(json.dumps(doc), filename="x.geojson")
    # Each feature's every problem, one entry each (feature 2 lacks its route and every property).
    assert list(dict.fromkeys(w for w, _ in e.value.problems)) == ["feature 1", "feature 2", "feature 3"]
    assert any("LineString" in what for where, what in e.value.problems if where == "feature 2")
    with pytest.raises(ManifestError, match="not JSON"):
        parse_manifest("{oops", "geojson")


def test_dry_run_and_format_detection(tmp_path: Path) -> None:
    path = tmp_path / "trips.txt"
    path.write_text(_csv(ROW_WKT))
    db_path = tmp_path / "kawal.db"
    out = CliRunner().invoke(cli, ["trips", "import", str(path), "--db", str(db_path), "--dry-run"])
    assert out.exit_code == 0 and "1 valid trip(s)" in out.output
    assert not db_path.exists()


def test_token_create_command(backend: Backend) -> None:
    db = backend.target
    runner = CliRunner()
    out = runner.invoke(cli, ["token", "create", "--name", "ops-budi", "--role", "operator", "--db", db])
    assert out.exit_code == 0, out.output
    token = out.output.splitlines()[0].strip()
    assert token.startswith("kwl_")
    principal = TokenStore(backend.open()).lookup(token)
    assert principal is not None and (principal.name, principal.role) == ("ops-budi", Role.OPERATOR)
    if backend.kind == "sqlite":
        assert token not in (Path(db).read_bytes().decode("latin-1"))  # only the hash is on disk
    dup = runner.invoke(cli, ["token", "create", "--name", "ops-budi", "--role", "viewer", "--db", db])
    assert dup.exit_code == 1 and "already exists" in dup.output
    bad = runner.invoke(cli, ["token", "create", "--name", "x", "--role", "root", "--db", db])
    assert bad.exit_code == 2
    assert [r.action for r in AuditLog(backend.open()).records()] == ["token.create"]


def test_every_problem_of_every_row_in_one_run(tmp_path: Path) -> None:
    """Conversion, field and schedule problems of one row together, and of every row; no pydantic prefixes."""
    many = (
        "bad id,JBG-KS-0003,TRK-0003,Gudang KPU Jombang,-7.5460,north,PPK Ploso,-7.4500,112.2400,,,"
        '"-7.5460 112.2330; -97.5 112.2350",1732071600,1732060800,wide,,Ploso'
    )
    seals = ROW_LATLON.replace("T-2,", "T-6,").replace("1732060800,1732071600", "1732071600,1732060800")
    path = tmp_path / "manifest.csv"
    path.write_text(_csv(ROW_WKT, many, seals))
    out = CliRunner().invoke(cli, ["trips", "import", str(path), "--dry-run"])
    assert out.exit_code == 1
    lines = [line.removeprefix(f"{path}: ") for line in out.output.splitlines() if line.startswith(str(path))]
    assert lines == [
        "line 3: corridor_m: not a number: 'wide'",
        "line 3: origin_lon: not a number: 'north'",
        "line 3: trip_id must match [A-Za-z0-9._-]{1,64}, got 'bad id'",
        "line 3: route: route point 1 is out of range: [-97.5, 112.235]",
        "line 3: arrive_by must come after depart_after",
        "line 4: arrive_by must come after depart_after",
    ], out.output
    assert "Value error" not in out.output
    assert "6 problem(s)" in out.output
