"""Which kecamatan and desa contain a point: ``place`` on alerts and crates (CONTRACT 2.3, version 2).

The boundaries come from a GeoJSON FeatureCollection (``KAWAL_BOUNDARIES``; by default the packaged file of
Jombang regency, ``kawal/data/jombang-boundaries.geojson``). A feature needs ``properties.level``
(``"kecamatan"`` or ``"desa"``), ``code`` and ``name``, and a Polygon or MultiPolygon; a desa should name
its ``kecamatan_code`` (else the kecamatan that contains the desa is used). ``lat``/``lon`` give a centre
(else a point inside the polygon). Other features are ignored.

Rules, so every point has exactly one answer:
- A point inside a desa gets that desa and the desa's own kecamatan (the hierarchy of the codes wins over the
  kecamatan polygons, which are drawn separately and overlap their neighbours by a few metres).
- A point in no desa but inside a kecamatan (a sliver between the simplified desa polygons) gets that
  kecamatan with ``desa: null``.
- A point on a shared border, or covered by two overlapping polygons, belongs to the area with the smaller
  code. Borders count as inside (closed polygons).
- A point outside every area, or not a finite coordinate, has no place (``None``; ``null`` on the wire).

Lookups go through a coarse grid computed once at load: a cell that lies wholly inside one desa (or wholly
outside every area) answers without any geometry test; the other cells keep the few polygons that touch
them, found with shapely's STRtree, and test those, smallest code first.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

log = logging.getLogger(__name__)

DEFAULT_FILE = "jombang-boundaries.geojson"
CELL_DEG = 0.004  # about 440 m: most cells then lie inside one desa (a desa is about 1.9 km across)
SIMPLIFY_DEG = 0.0002  # about 22 m: the dashboard's copy of the boundaries, 60 % of the file's size


class PlacesError(ValueError):
    """The boundaries file cannot be used; the message says why."""


class Place(TypedDict):
    """``place`` of an alert or a crate: names (CONTRACT 2.3) and, as an extension, the area codes."""

    kecamatan: str
    desa: str | None
    kecamatan_code: str
    desa_code: str | None


@dataclass(frozen=True)
class Area:
    level: str  # "kecamatan" or "desa"
    code: str
    name: str
    kecamatan_code: str  # its own code for a kecamatan
    lat: float  # centre
    lon: float
    geom: BaseGeometry


class Places:
    def __init__(self, collection: dict[str, Any], source: str = "<memory>") -> None:
        self.source = source
        attribution = collection.get("attribution")
        self.attribution: str | None = attribution if isinstance(attribution, str) else None
        features = collection.get("features") if collection.get("type") == "FeatureCollection" else None
        if not isinstance(features, list):
            raise PlacesError(f"{source}: not a GeoJSON FeatureCollection")
        kec: list[Area] = []
        desa_raw: list[tuple[dict[str, Any], BaseGeometry]] = []
        for i, f in enumerate(features):
            props = f.get("properties") if isinstance(f, dict) else None
            if not isinstance(props, dict):
                continue
            level = props.get("level")
            if level not in ("kecamatan", "desa"):
                continue
            geom = _geometry(f, source, i)
            if geom is None:
                continue
            if level == "kecamatan":
                kec.append(_area(props, geom, str(props.get("code", "")), source, i))
            else:
                desa_raw.append((props, geom))
        kec.sort(key=lambda a: a.code)
        self.kecamatan: list[Area] = kec
        self._kec_by_code = {a.code: a for a in kec}
        desa: list[Area] = []
        for i, (props, geom) in enumerate(desa_raw):
            parent = str(props.get("kecamatan_code") or "") or self._containing_kecamatan(geom)
            if parent not in self._kec_by_code:
                log.warning("%s: desa %s has no known kecamatan; ignored", source, props.get("code"))
                continue
            desa.append(_area(props, geom, parent, source, i))
        desa.sort(key=lambda a: a.code)
        self.desa: list[Area] = desa
        if not kec:
            raise PlacesError(f"{source}: no kecamatan polygons (features with properties.level = 'kecamatan')")
        codes = [a.code for a in [*kec, *desa]]
        if len(set(codes)) != len(codes):
            twice = sorted({c for c in codes if codes.count(c) > 1})
            raise PlacesError(f"{source}: area codes must be unique; repeated: {', '.join(twice[:5])}")
        self._places: dict[str, Place] = {a.code: self._place(a) for a in [*kec, *desa]}
        self._geojson: bytes | None = None
        self._build_grid()

    @classmethod
    def load(cls, path: str | Path | None = None) -> Places:
        """The boundaries in ``path``, or the packaged Jombang file when ``path`` is None."""
        try:
            if path is None:
                text = resources.files("kawal").joinpath("data", DEFAULT_FILE).read_text(encoding="utf-8")
                source = f"kawal/data/{DEFAULT_FILE}"
            else:
                text = Path(path).read_text(encoding="utf-8")
                source = str(path)
            data = json.loads(text)
        except (OSError, UnicodeDecodeError) as e:
            raise PlacesError(f"cannot read the boundaries file {path}: {e}") from e
        except ValueError as e:
            raise PlacesError(f"{path}: not JSON: {e}") from e
        if not isinstance(data, dict):
            raise PlacesError(f"{path}: not a GeoJSON FeatureCollection")
        return cls(data, source)

    # ---- lookups -------------------------------------------------------------------------------

    def lookup(self, lat: float | None, lon: float | None) -> Place | None:
        """The kecamatan and desa containing (lat, lon), or None outside every area (see the module doc)."""
        if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        i = math.floor((lon - self._x0) / CELL_DEG)
        j = math.floor((lat - self._y0) / CELL_DEG)
        if not (0 <= i < self._nx and 0 <= j < self._ny):
            return None
        cell = self._cells[j * self._nx + i]
        if cell is None or isinstance(cell, str):
            return None if cell is None else dict(self._places[cell])  # type: ignore[return-value]
        for area in cell:
            if shapely.intersects_xy(area.geom, lon, lat):
                return dict(self._places[area.code])  # type: ignore[return-value]
        return None

    def find_kecamatan(self, name_or_code: str) -> Area | None:
        """A kecamatan by code or by name, ignoring case and spaces at either end."""
        key = name_or_code.strip().casefold()
        for a in self.kecamatan:
            if a.code.casefold() == key or a.name.casefold() == key:
                return a
        return None

    def kecamatan_of(self, area: Area) -> Area:
        return self._kec_by_code[area.kecamatan_code]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of every area."""
        return self._bounds

    def geojson(self) -> bytes:
        """The areas as a simplified GeoJSON FeatureCollection for the dashboard (computed once)."""
        if self._geojson is None:
            features = [
                {
                    "type": "Feature",
                    "properties": {
                        "level": a.level,
                        "code": a.code,
                        "name": a.name,
                        "kecamatan_code": a.kecamatan_code,
                        "lat": round(a.lat, 6),
                        "lon": round(a.lon, 6),
                    },
                    "geometry": mapping(
                        shapely.set_precision(a.geom.simplify(SIMPLIFY_DEG, preserve_topology=True), 1e-5)
                    ),
                }
                for a in [*self.kecamatan, *self.desa]
            ]
            out = {"type": "FeatureCollection", "attribution": self.attribution, "features": features}
            self._geojson = json.dumps(out, separators=(",", ":")).encode()
        return self._geojson

    # ---- building ------------------------------------------------------------------------------

    def _place(self, a: Area) -> Place:
        if a.level == "kecamatan":
            return {"kecamatan": a.name, "desa": None, "kecamatan_code": a.code, "desa_code": None}
        k = self._kec_by_code[a.kecamatan_code]
        return {"kecamatan": k.name, "desa": a.name, "kecamatan_code": k.code, "desa_code": a.code}

    def _containing_kecamatan(self, geom: BaseGeometry) -> str:
        p = geom.point_on_surface()
        return next((a.code for a in self._kec_by_code.values() if a.geom.covers(p)), "")

    def _build_grid(self) -> None:
        """Classify every cell at once (vectorised): one answer, none, or the candidate polygons."""
        areas = [*self.desa, *self.kecamatan]  # desa first, each level by code: the order of precedence
        geoms = np.array([a.geom for a in areas], dtype=object)
        shapely.prepare(geoms)
        x0, y0, x1, y1 = shapely.total_bounds(geoms)
        self._bounds = (float(x0), float(y0), float(x1), float(y1))
        self._x0, self._y0 = float(x0), float(y0)
        self._nx = math.floor((x1 - x0) / CELL_DEG) + 1
        self._ny = math.floor((y1 - y0) / CELL_DEG) + 1
        jj, ii = np.divmod(np.arange(self._nx * self._ny), self._nx)
        boxes = shapely.box(x0 + ii * CELL_DEG, y0 + jj * CELL_DEG, x0 + (ii + 1) * CELL_DEG, y0 + (jj + 1) * CELL_DEG)
        tree = shapely.STRtree(geoms)
        cell_idx, area_idx = tree.query(boxes, predicate="intersects")
        touching: list[list[int]] = [[] for _ in range(len(boxes))]
        for c, a in zip(cell_idx.tolist(), area_idx.tolist(), strict=True):
            touching[c].append(a)
        n_desa = len(self.desa)
        # A cell touched by one desa (or by no desa and one kecamatan) may lie wholly inside it.
        for found in touching:
            found.sort()
        single = [(c, found[0]) for c, found in enumerate(touching) if found and _single(found, n_desa)]
        inside = (
            shapely.contains_properly(geoms[[a for _, a in single]], boxes[[c for c, _ in single]])
            if single
            else np.array([], dtype=bool)
        )
        whole = {c: areas[a].code for (c, a), ok in zip(single, inside.tolist(), strict=True) if ok}
        cells: list[str | list[Area] | None] = []
        for c, found in enumerate(touching):
            if not found:
                cells.append(None)
            elif c in whole:
                cells.append(whole[c])
            else:
                cells.append([areas[a] for a in found])
        self._cells = cells


def _single(found: list[int], n_desa: int) -> bool:
    """One desa touches the cell, or no desa and one kecamatan (a point in a desa never needs the kecamatan)."""
    desa = [a for a in found if a < n_desa]
    return len(desa) == 1 if desa else len(found) == 1


def _geometry(f: dict[str, Any], source: str, i: int) -> BaseGeometry | None:
    try:
        geom = shape(f["geometry"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PlacesError(f"{source}: feature {i} has no usable geometry: {e}") from e
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        log.warning("%s: feature %d is a %s, not a polygon; ignored", source, i, geom.geom_type)
        return None
    return geom if geom.is_valid else shapely.make_valid(geom)


def _area(props: dict[str, Any], geom: BaseGeometry, kecamatan_code: str, source: str, i: int) -> Area:
    code, name = props.get("code"), props.get("name")
    if not isinstance(code, str) or not code or not isinstance(name, str) or not name:
        raise PlacesError(f"{source}: feature {i} needs properties 'code' and 'name' as text")
    lat, lon = props.get("lat"), props.get("lon")
    if not (isinstance(lat, int | float) and isinstance(lon, int | float)):
        p = geom.point_on_surface()
        lat, lon = p.y, p.x
    level = str(props["level"])
    return Area(level, code, name, code if level == "kecamatan" else kecamatan_code, float(lat), float(lon), geom)


@lru_cache(maxsize=4)
def load_places(path: str | None = None) -> Places:
    """The boundaries of ``path`` (the packaged Jombang file when None), loaded once per process."""
    return Places.load(path)
