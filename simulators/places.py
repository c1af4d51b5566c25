"""Jombang's logistics chain: the regency warehouse, 21 PPK, a PPS in each of the 306 villages, and their TPS.

The places are real (kawal/places.py, the packaged boundaries of Jombang regency): each PPK at its kecamatan's
centre, each village's PPS at the village centre, and the village's polling stations (TPS) inside the village,
deterministically for a seed. The warehouse comes from `simulators/data/jombang.json`. A village centre that
lies outside its own polygon (the boundaries are simplified) or within 500 m of another office moves to the
nearest point of the village that is clear of them, so no two office zones overlap.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import numpy as np

from kawal.geodesy import LocalFrame
from kawal.places import Area, Places, load_places

PlaceKind = Literal["warehouse", "ppk", "pps", "tps"]

# Zone radii. 150 m is Kawal's default zone (kawal.trips.DEFAULT_ZONE_RADIUS_M); a village office yard and a
# polling-station tent are smaller, so their zones are too.
RADIUS_M: dict[str, float] = {"warehouse": 150.0, "ppk": 150.0, "pps": 100.0, "tps": 60.0}


def zone_body(name: str, lat: float, lon: float, radius_m: float) -> dict[str, Any]:
    """A zone object of a trip body (CONTRACT 2.2), coordinates rounded to 6 decimals (about 0.1 m)."""
    return {"name": name, "lat": round(lat, 6), "lon": round(lon, 6), "radius_m": radius_m}


@dataclass(frozen=True, slots=True)
class Place:
    """A warehouse, PPK, PPS or TPS: a named zone in the chain."""

    code: str  # "WH", "PPK07", "PPS07-03", "TPS07-03-004": also used in crate and trip ids
    kind: PlaceKind
    name: str
    lat: float
    lon: float
    x: float  # local frame, metres east
    y: float  # local frame, metres north
    district: str  # kecamatan name
    parent: str | None = None  # code of the place one level up
    area: str | None = None  # the area code of its kecamatan (PPK) or desa (PPS, TPS)

    @property
    def radius_m(self) -> float:
        return RADIUS_M[self.kind]

    def zone(self) -> dict[str, float | str]:
        """The zone object of a trip body (CONTRACT 2.2)."""
        return zone_body(self.name, self.lat, self.lon, self.radius_m)


@dataclass(slots=True)
class Geography:
    frame: LocalFrame
    warehouse: Place
    ppk: list[Place]
    pps: dict[str, list[Place]]  # PPK code -> villages
    tps: dict[str, list[Place]]  # PPS code -> polling stations
    _all: list[Place] = field(default_factory=list)

    def all_places(self) -> list[Place]:
        if not self._all:
            self._all = [self.warehouse, *self.ppk]
            for vs in self.pps.values():
                self._all.extend(vs)
            for ts in self.tps.values():
                self._all.extend(ts)
        return self._all

    def by_code(self, code: str) -> Place:
        for p in self.all_places():
            if p.code == code:
                return p
        raise KeyError(code)

    def bounds_xy(self) -> tuple[float, float, float, float]:
        xs = [p.x for p in self.all_places()]
        ys = [p.y for p in self.all_places()]
        return min(xs), min(ys), max(xs), max(ys)


def _load_source() -> dict[str, object]:
    text = resources.files("simulators").joinpath("data/jombang.json").read_text(encoding="utf-8")
    data: dict[str, object] = json.loads(text)
    return data


OFFICE_GAP_M = 500.0  # between office zones (warehouse, PPK, PPS): 150 m zones with room between them
TPS_GAP_M = (350.0, 300.0)  # a TPS from any office: wanted, and the least a crowded village may give
TPS_SPACING_M = (250.0, 200.0)  # between TPS of the regency: wanted, least
_GRID_M = 50.0  # candidate spacing when a village office must move


def _clear_point(
    places: Places, area: Area, frame: LocalFrame, taken: list[tuple[float, float]]
) -> tuple[float, float]:
    """The point of the village nearest its centre that lies inside it (by `places.lookup`) and at least
    OFFICE_GAP_M from every office in `taken`; the centre itself when it qualifies."""
    cx, cy = frame.to_xy(area.lat, area.lon)

    def ok(x: float, y: float, gap: float) -> bool:
        lat, lon = frame.to_latlon(x, y)
        place = places.lookup(round(lat, 6), round(lon, 6))  # as the place will be stored
        return (
            place is not None
            and place["desa_code"] == area.code
            and all(math.hypot(x - tx, y - ty) >= gap for tx, ty in taken)
        )

    if ok(cx, cy, OFFICE_GAP_M):
        return cx, cy
    x0, y0, x1, y1 = area.geom.bounds
    (ax, ay), (bx, by) = frame.to_xy(y0, x0), frame.to_xy(y1, x1)
    xs, ys = np.arange(ax, bx, _GRID_M), np.arange(ay, by, _GRID_M)
    candidates = sorted(((float(x), float(y)) for x in xs for y in ys), key=lambda p: math.hypot(p[0] - cx, p[1] - cy))
    for gap in (OFFICE_GAP_M, 0.8 * OFFICE_GAP_M, 0.6 * OFFICE_GAP_M):
        for x, y in candidates:
            if ok(x, y, gap):
                return x, y
    raise ValueError(f"no room for the office of desa {area.name} ({area.code})")


def load_geography(seed: int = 0, tps_per_village: tuple[int, int] = (5, 10)) -> Geography:
    """Warehouse, the 21 PPK and 306 PPS at their real places, and TPS generated inside each village for `seed`."""
    places = load_places()
    src = _load_source()
    wh = src["regency_warehouse"]
    assert isinstance(wh, dict)
    lats = [a.lat for a in places.kecamatan]
    lons = [a.lon for a in places.kecamatan]
    frame = LocalFrame(lat0=(min(lats) + max(lats)) / 2, lon0=(min(lons) + max(lons)) / 2)

    def mk_xy(
        code: str, kind: PlaceKind, name: str, x: float, y: float, district: str, parent: str | None, area: str | None
    ) -> Place:
        lat, lon = frame.to_latlon(x, y)
        return Place(code, kind, name, round(lat, 6), round(lon, 6), x, y, district, parent, area)

    wx, wy = frame.to_xy(float(wh["lat"]), float(wh["lon"]))
    warehouse = mk_xy("WH", "warehouse", str(wh["name"]), wx, wy, "Jombang", None, None)
    ppk = [
        mk_xy(f"PPK{i + 1:02d}", "ppk", f"PPK {k.name}", *frame.to_xy(k.lat, k.lon), k.name, None, k.code)
        for i, k in enumerate(places.kecamatan)
    ]
    # A few village names recur in several kecamatan: those PPS are named with their kecamatan too.
    seen = Counter(d.name for d in places.desa)
    taken: list[tuple[float, float]] = [(warehouse.x, warehouse.y)] + [(p.x, p.y) for p in ppk]
    pps: dict[str, list[Place]] = {p.code: [] for p in ppk}
    ppk_of = {k.code: p for k, p in zip(places.kecamatan, ppk, strict=True)}
    villages: dict[str, Area] = {}
    for d in places.desa:  # by area code: the order is the same on every run
        parent = ppk_of[d.kecamatan_code]
        x, y = _clear_point(places, d, frame, taken)
        taken.append((x, y))
        code = f"PPS{parent.code[3:]}-{len(pps[parent.code]) + 1:02d}"
        name = f"PPS {d.name}" if seen[d.name] == 1 else f"PPS {d.name} ({parent.district})"
        pps[parent.code].append(mk_xy(code, "pps", name, x, y, parent.district, parent.code, d.code))
        villages[code] = d

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6E0]))
    offices = np.array(taken)
    cells: dict[tuple[int, int], list[tuple[float, float]]] = {}  # spatial hash of TPS, 500 m cells

    def crowded(x: float, y: float, spacing: float) -> bool:
        cx, cy = int(x // 500), int(y // 500)
        return any(
            math.hypot(x - tx, y - ty) < spacing
            for i in (-1, 0, 1)
            for j in (-1, 0, 1)
            for tx, ty in cells.get((cx + i, cy + j), ())
        )

    tps: dict[str, list[Place]] = {}
    for vs in pps.values():
        for v in vs:
            area = villages[v.code]
            x0, y0, x1, y1 = area.geom.bounds
            (ax, ay), (bx, by) = frame.to_xy(y0, x0), frame.to_xy(y1, x1)
            n = int(rng.integers(tps_per_village[0], tps_per_village[1] + 1))
            out: list[Place] = []
            gap, spacing = TPS_GAP_M[0], TPS_SPACING_M[0]
            for attempt in range(1, 20_001):
                if len(out) == n:
                    break
                if attempt % 300 == 0:  # a small or crowded village: accept closer stations
                    gap, spacing = max(TPS_GAP_M[1], gap * 0.9), max(TPS_SPACING_M[1], spacing * 0.85)
                x, y = float(rng.uniform(ax, bx)), float(rng.uniform(ay, by))
                if float(np.min(np.hypot(offices[:, 0] - x, offices[:, 1] - y))) < gap or crowded(x, y, spacing):
                    continue
                lat, lon = frame.to_latlon(x, y)
                place = places.lookup(round(lat, 6), round(lon, 6))
                if place is None or place["desa_code"] != area.code:  # inside its own village only
                    continue
                cells.setdefault((int(x // 500), int(y // 500)), []).append((x, y))
                code = f"TPS{v.code[3:]}-{len(out) + 1:03d}"
                name = f"TPS {len(out) + 1:03d} {v.name[4:]}"
                out.append(mk_xy(code, "tps", name, x, y, v.district, v.code, area.code))
            if not out:
                raise ValueError(f"no room for a polling station in desa {area.name} ({area.code})")
            tps[v.code] = out
    return Geography(frame, warehouse, ppk, pps, tps)
