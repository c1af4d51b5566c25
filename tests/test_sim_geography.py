"""The simulator's regency is the real one: PPK at the kecamatan centres, a PPS in every village at its
centre (moved only when the centre is unusable), and polling stations inside their own village."""

from __future__ import annotations

import math

from kawal.places import load_places
from simulators.places import OFFICE_GAP_M, load_geography


def test_offices_and_polling_stations_are_where_the_regency_has_them() -> None:
    places = load_places()
    geo = load_geography(seed=3)
    assert [(p.name, p.lat, p.lon) for p in geo.ppk] == [
        (f"PPK {k.name}", round(k.lat, 6), round(k.lon, 6)) for k in places.kecamatan
    ]
    villages = [v for vs in geo.pps.values() for v in vs]
    assert sorted(v.area or "" for v in villages) == [d.code for d in places.desa]  # all 306
    assert len({v.name for v in villages}) == 306  # names that recur in two kecamatan say which
    by_code = {d.code: d for d in places.desa}
    moved = 0
    offices = [geo.warehouse, *geo.ppk, *villages]
    for v in villages:
        desa = by_code[v.area or ""]
        assert v.name.startswith(f"PPS {desa.name}")
        place = places.lookup(v.lat, v.lon)
        assert place is not None and place["desa_code"] == desa.code and place["kecamatan"] == v.district
        if (v.lat, v.lon) != (round(desa.lat, 6), round(desa.lon, 6)):
            moved += 1  # its centre lies outside the simplified polygon, or too near another office
        assert all(math.hypot(v.x - o.x, v.y - o.y) >= 0.6 * OFFICE_GAP_M for o in offices if o is not v)
        stations = geo.tps[v.code]
        assert 1 <= len(stations) <= 10
        for t in stations:
            assert places.lookup(t.lat, t.lon) == place, f"{t.code} lies outside desa {desa.name}"
    assert moved <= 20  # nearly every PPS sits at its village centre
    # No two zones overlap.
    every = geo.all_places()
    for i, p in enumerate(every):
        for q in every[i + 1 :]:
            if abs(p.x - q.x) < 400 and abs(p.y - q.y) < 400:
                assert math.hypot(p.x - q.x, p.y - q.y) > p.radius_m + q.radius_m, (p.code, q.code)
