"""Jombang's logistics chain: the regency warehouse, 21 PPK, generated PPS villages and their TPS.

The warehouse and the 21 kecamatan (PPK) come from `simulators/data/jombang.json` (rough centres, copied
from the project's shared place list). Villages (PPS) and polling stations (TPS) are generated around them,
deterministically for a seed: no village list is available offline, and the simulator only needs plausible
spacing, not survey positions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import numpy as np

from kawal.geodesy import LocalFrame

PlaceKind = Literal["warehouse", "ppk", "pps", "tps"]

# Zone radii. 150 m is Kawal's default zone (kawal.trips.DEFAULT_ZONE_RADIUS_M); a village office yard and a
# polling-station tent are smaller, so their zones are too.
RADIUS_M: dict[str, float] = {"warehouse": 150.0, "ppk": 150.0, "pps": 100.0, "tps": 60.0}

_PREFIXES = (
    "Sumber",
    "Mojo",
    "Karang",
    "Banjar",
    "Kali",
    "Jati",
    "Watu",
    "Sido",
    "Gondang",
    "Tanjung",
    "Pulo",
    "Kedung",
    "Bandung",
    "Candi",
    "Dukuh",
    "Glagah",
    "Sambi",
    "Tambak",
    "Tugu",
    "Wringin",
    "Ngampel",
    "Plosok",
    "Rejo",
    "Ngrimbi",
    "Brodot",
    "Bendung",
    "Sukodadi",
    "Blimbing",
    "Gedang",
    "Pandan",
)
_SUFFIXES = (
    "rejo",
    "sari",
    "wangi",
    "agung",
    "mulyo",
    "kerep",
    "wetan",
    "kulon",
    "lor",
    "kidul",
    "jati",
    "asri",
    "arum",
    "anyar",
    "sono",
    "kembang",
    "duwur",
    "gede",
    "tengah",
    "harjo",
)


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


def _apportion(total: int, weights: np.ndarray) -> list[int]:
    """Integer counts summing to total, proportional to weights (largest remainder)."""
    raw = weights / weights.sum() * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


def load_geography(
    seed: int = 0, villages_total: int | None = None, tps_per_village: tuple[int, int] = (5, 10)
) -> Geography:
    """Warehouse + 21 PPK from the data file, and villages and TPS generated for `seed`."""
    src = _load_source()
    wh = src["regency_warehouse"]
    kec = src["kecamatan"]
    assert isinstance(wh, dict) and isinstance(kec, list)
    lats = [float(k["lat"]) for k in kec]
    lons = [float(k["lon"]) for k in kec]
    frame = LocalFrame(lat0=(min(lats) + max(lats)) / 2, lon0=(min(lons) + max(lons)) / 2)

    def mk(
        code: str,
        kind: PlaceKind,
        name: str,
        lat: float,
        lon: float,
        district: str,
        parent: str | None = None,
    ) -> Place:
        x, y = frame.to_xy(lat, lon)
        return Place(code, kind, name, lat, lon, x, y, district, parent)

    def mk_xy(code: str, kind: PlaceKind, name: str, x: float, y: float, district: str, parent: str | None) -> Place:
        lat, lon = frame.to_latlon(x, y)
        return Place(code, kind, name, round(lat, 6), round(lon, 6), x, y, district, parent)

    warehouse = mk("WH", "warehouse", str(wh["name"]), float(wh["lat"]), float(wh["lon"]), "Jombang")
    ppk = [
        mk(f"PPK{i + 1:02d}", "ppk", f"PPK {k['name']}", float(k["lat"]), float(k["lon"]), str(k["name"]))
        for i, k in enumerate(kec)
    ]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6E0]))
    n_villages = villages_total or int(src.get("villages_total", 306))  # type: ignore[call-overload]
    counts = _apportion(n_villages, rng.uniform(0.7, 1.3, len(ppk)))
    centres = np.array([[p.x, p.y] for p in ppk])
    taken: list[tuple[float, float]] = [(warehouse.x, warehouse.y)] + [(p.x, p.y) for p in ppk]
    names: set[str] = set()

    def village_name() -> str:
        for _ in range(200):
            n = str(rng.choice(_PREFIXES)) + str(rng.choice(_SUFFIXES))
            if n not in names:
                names.add(n)
                return n
        n = f"Desa {len(names) + 1}"
        names.add(n)
        return n

    pps: dict[str, list[Place]] = {}
    for i, (p, n) in enumerate(zip(ppk, counts, strict=True)):
        out: list[Place] = []
        spacing = 900.0
        attempts = 0
        while len(out) < n:
            attempts += 1
            if attempts % 400 == 0:
                spacing *= 0.85  # crowded kecamatan: accept closer villages rather than loop forever
            r = 900.0 + 3600.0 * math.sqrt(float(rng.uniform()))
            a = float(rng.uniform(0, 2 * math.pi))
            x, y = p.x + r * math.cos(a), p.y + r * math.sin(a)
            # A village belongs to the nearest PPK office (Voronoi), so kecamatan do not interleave.
            if int(np.argmin(np.hypot(centres[:, 0] - x, centres[:, 1] - y))) != i:
                continue
            if any(math.hypot(x - tx, y - ty) < spacing for tx, ty in taken):
                continue
            taken.append((x, y))
            code = f"PPS{i + 1:02d}-{len(out) + 1:02d}"
            out.append(mk_xy(code, "pps", f"PPS {village_name()}", x, y, p.district, p.code))
        pps[p.code] = out

    tps: dict[str, list[Place]] = {}
    office_xy = np.array(taken)
    cells: dict[tuple[int, int], list[tuple[float, float]]] = {}  # spatial hash of TPS, 500 m cells

    def crowded(x: float, y: float, spacing: float) -> bool:
        cx, cy = int(x // 500), int(y // 500)
        return any(
            math.hypot(x - tx, y - ty) < spacing
            for i in (-1, 0, 1)
            for j in (-1, 0, 1)
            for tx, ty in cells.get((cx + i, cy + j), ())
        )

    for villages in pps.values():
        for v in villages:
            n = int(rng.integers(tps_per_village[0], tps_per_village[1] + 1))
            out = []
            attempts = 0
            spacing = 250.0
            while len(out) < n:
                attempts += 1
                if attempts % 300 == 0:
                    spacing *= 0.85
                r = float(rng.uniform(300.0, 1100.0))
                a = float(rng.uniform(0, 2 * math.pi))
                x, y = v.x + r * math.cos(a), v.y + r * math.sin(a)
                # Keep clear of every office zone (and of the village's own office).
                if float(np.min(np.hypot(office_xy[:, 0] - x, office_xy[:, 1] - y))) < 350.0:
                    continue
                if crowded(x, y, spacing):
                    continue
                cells.setdefault((int(x // 500), int(y // 500)), []).append((x, y))
                code = f"TPS{v.code[3:]}-{len(out) + 1:03d}"
                out.append(mk_xy(code, "tps", f"TPS {len(out) + 1:03d} {v.name[4:]}", x, y, v.district, v.code))
            tps[v.code] = out
    return Geography(frame, warehouse, ppk, pps, tps)
