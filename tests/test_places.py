"""Places (kawal/places.py): the kecamatan and desa of a point on the packaged Jombang boundaries and on a
small boundaries file of another regency (KAWAL_BOUNDARIES), with the border and gap rules."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import shapely

from kawal.places import Places, PlacesError, load_places
from kawal.settings import Settings


@pytest.fixture(scope="module")
def jombang() -> Places:
    return load_places()


def test_a_fix_inside_a_known_village(jombang: Places) -> None:
    # The centre of desa Jantiganggong, kecamatan Perak (area codes 35.17.01.2001 and 35.17.01).
    assert jombang.lookup(-7.606658, 112.161201) == {
        "kecamatan": "Perak",
        "desa": "Jantiganggong",
        "kecamatan_code": "35.17.01",
        "desa_code": "35.17.01.2001",
    }
    # Kawal's own regency warehouse at Jombang town.
    place = jombang.lookup(-7.546, 112.233)
    assert place is not None and place["kecamatan"] == "Jombang" and place["desa"]


def test_outside_the_regency_and_bad_coordinates_have_no_place(jombang: Places) -> None:
    assert jombang.lookup(-7.2575, 112.7521) is None  # Surabaya
    assert jombang.lookup(0.0, 0.0) is None
    assert jombang.lookup(float("nan"), 112.2) is None
    assert jombang.lookup(-7.55, float("inf")) is None
    assert jombang.lookup(None, None) is None


def test_the_regency_has_its_21_kecamatan_and_306_desa(jombang: Places) -> None:
    assert len(jombang.kecamatan) == 21 and len(jombang.desa) == 306
    assert {a.kecamatan_code for a in jombang.desa} == {a.code for a in jombang.kecamatan}
    assert jombang.find_kecamatan(" diwek ") is not None and jombang.find_kecamatan("35.17.03") is not None
    assert jombang.attribution and "MIT" in jombang.attribution


def test_the_grid_answers_as_a_search_of_every_polygon(jombang: Places) -> None:
    """Random points (fixed seed) against a plain test of every polygon, smallest code first."""
    rng = random.Random(12)
    x0, y0, x1, y1 = jombang.bounds
    for _ in range(1500):
        lat, lon = rng.uniform(y0, y1), rng.uniform(x0, x1)
        p = shapely.Point(lon, lat)
        desa = next((a for a in jombang.desa if a.geom.covers(p)), None)
        kec = next((a for a in jombang.kecamatan if a.geom.covers(p)), None)
        got = jombang.lookup(lat, lon)
        if desa is not None:
            assert got is not None and got["desa_code"] == desa.code
            assert got["kecamatan_code"] == desa.kecamatan_code
        elif kec is not None:
            assert got == {"kecamatan": kec.name, "desa": None, "kecamatan_code": kec.code, "desa_code": None}
        else:
            assert got is None


def test_a_vertex_shared_by_two_villages_goes_to_the_smaller_code(jombang: Places) -> None:
    owners: dict[tuple[float, float], list[str]] = {}
    for a in jombang.desa:
        for xy in {tuple(c) for c in shapely.get_coordinates(a.geom.boundary).tolist()}:
            owners.setdefault(xy, []).append(a.code)
    shared = sorted((xy, sorted(codes)) for xy, codes in owners.items() if len(codes) >= 2)
    assert shared, "neighbouring villages share border vertices"
    again = Places.load()
    for (lon, lat), codes in shared[:: max(1, len(shared) // 50)]:
        assert all(a.geom.covers(shapely.Point(lon, lat)) for a in jombang.desa if a.code in codes)
        got = jombang.lookup(lat, lon)
        assert got is not None and got["desa_code"] == codes[0]
        assert again.lookup(lat, lon) == got  # the same on every load


def _square(level: str, code: str, name: str, x0: float, y0: float, size: float, **props: Any) -> dict[str, Any]:
    ring = [[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size], [x0, y0]]
    return {
        "type": "Feature",
        "properties": {"level": level, "code": code, "name": name, **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _regency(tmp_path: Path) -> Path:
    """Two kecamatan side by side; the first has two desa with a shared edge at lon 110.01 and a gap."""
    features = [
        _square("kecamatan", "99.01.02", "Timur", 110.02, -7.02, 0.02),
        _square("kecamatan", "99.01.01", "Barat", 110.0, -7.02, 0.02),
        _square("desa", "99.01.01.2002", "Kidul", 110.01, -7.02, 0.01, kecamatan_code="99.01.01"),
        _square("desa", "99.01.01.2001", "Lor", 110.0, -7.02, 0.01),  # no kecamatan_code: found by polygon
        {"type": "Feature", "properties": {"level": "regency", "code": "99.01"}, "geometry": None},
    ]
    path = tmp_path / "regency.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_another_regency_from_kawal_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAWAL_BOUNDARIES", str(_regency(tmp_path)))
    places = Places.load(Settings().boundaries)
    assert places.lookup(-7.015, 110.005) == {
        "kecamatan": "Barat",
        "desa": "Lor",
        "kecamatan_code": "99.01.01",
        "desa_code": "99.01.01.2001",
    }
    # On the edge both desa share: the smaller code, here and on every lookup.
    for lat in (-7.02, -7.015, -7.0125, -7.01):
        got = places.lookup(lat, 110.01)
        assert got is not None and got["desa"] == "Lor"
    # Inside kecamatan Barat but in no desa (the gap north of both): the kecamatan, desa null.
    assert places.lookup(-7.005, 110.015) == {
        "kecamatan": "Barat",
        "desa": None,
        "kecamatan_code": "99.01.01",
        "desa_code": None,
    }
    # On the border of the two kecamatan, outside every desa: the smaller code.
    got = places.lookup(-7.005, 110.02)
    assert got is not None and got["kecamatan"] == "Barat"
    assert places.lookup(-7.005, 110.03)["kecamatan"] == "Timur"  # type: ignore[index]
    assert places.lookup(-7.03, 110.01) is None
    collection = json.loads(places.geojson())
    assert {f["properties"]["name"] for f in collection["features"]} == {"Barat", "Timur", "Lor", "Kidul"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"type": "Feature"}', "FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "no kecamatan"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"level": "kecamatan",'
            ' "code": "1"}, "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}]}',
            "'code' and 'name'",
        ),
        (
            '{"type": "FeatureCollection", "features": ['
            + ",".join(
                2
                * [
                    '{"type": "Feature", "properties": {"level": "kecamatan", "code": "1", "name": "A"}, '
                    '"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}'
                ]
            )
            + ', 7, {"properties": [1]}]}',
            "repeated: 1",
        ),
    ],
)
def test_an_unusable_boundaries_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    with pytest.raises(PlacesError, match=message):
        Places.load(path)
    with pytest.raises(PlacesError, match="cannot read"):
        Places.load(tmp_path / "missing.geojson")


def test_the_dashboard_copy_is_smaller_and_keeps_every_area(jombang: Places) -> None:
    collection = json.loads(jombang.geojson())
    assert len(collection["features"]) == 327 and "MIT" in collection["attribution"]
    packaged = Path(__file__).parents[1] / "kawal" / "data" / "jombang-boundaries.geojson"
    assert len(jombang.geojson()) < 0.8 * packaged.stat().st_size
    perak = next(f for f in collection["features"] if f["properties"]["code"] == "35.17.01")
    assert math.isclose(perak["properties"]["lat"], -7.570924)
