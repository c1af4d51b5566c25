"""A spatial index over every trip's origin and destination zone (for wrong_destination).

A national election has hundreds of thousands of trips, and most share a handful of warehouses, so zones
are de-duplicated by position and radius and bucketed in a grid of `zone_cell_deg` cells. A query looks in
one cell; the rare very wide zones sit in a short list checked one by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kawal.geodesy import M_PER_DEG, distance_m, lon_degrees

ORIGIN = "origin"
DESTINATION = "destination"
ZoneKey = tuple[float, float, float]


@dataclass(slots=True)
class ZoneEntry:
    lat: float
    lon: float
    radius_m: float
    name: str
    owners: dict[tuple[str, str], None] = field(default_factory=dict)  # (trip_id, kind), insertion-ordered


class ZoneIndex:
    def __init__(self, cell_deg: float = 0.02, big_radius_m: float = 5_000.0, pad_m: float = 100.0) -> None:
        self.cell_deg = cell_deg
        self.pad_m = pad_m  # cells cover radius + pad, so a query margin up to pad_m never misses a zone
        self.big_radius_m = big_radius_m
        self._entries: dict[ZoneKey, ZoneEntry] = {}
        self._cells: dict[tuple[int, int], list[ZoneEntry]] = {}
        self._big: list[ZoneEntry] = []

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(lat: float, lon: float, radius_m: float) -> ZoneKey:
        return (round(lat, 6), round(lon, 6), round(radius_m, 1))

    def _cells_of(self, lat: float, lon: float, radius_m: float) -> list[tuple[int, int]]:
        radius_m += self.pad_m
        dlat = radius_m / M_PER_DEG
        dlon = lon_degrees(radius_m, lat)
        c = self.cell_deg
        i0, i1 = math.floor((lat - dlat) / c), math.floor((lat + dlat) / c)
        j0, j1 = math.floor((lon - dlon) / c), math.floor((lon + dlon) / c)
        return [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]

    def add(self, trip_id: str, kind: str, lat: float, lon: float, radius_m: float, name: str) -> None:
        key = self._key(lat, lon, radius_m)
        e = self._entries.get(key)
        if e is None:
            e = ZoneEntry(lat, lon, radius_m, name)
            self._entries[key] = e
            if radius_m > self.big_radius_m:
                self._big.append(e)
            else:
                for cell in self._cells_of(lat, lon, radius_m):
                    self._cells.setdefault(cell, []).append(e)
        e.owners[(trip_id, kind)] = None

    def remove(self, trip_id: str, kind: str, lat: float, lon: float, radius_m: float) -> None:
        key = self._key(lat, lon, radius_m)
        e = self._entries.get(key)
        if e is None:
            return
        e.owners.pop((trip_id, kind), None)
        if e.owners:
            return
        del self._entries[key]
        if radius_m > self.big_radius_m:
            self._big.remove(e)
            return
        for cell in self._cells_of(lat, lon, radius_m):
            bucket = self._cells.get(cell)
            if bucket is not None:
                bucket[:] = [x for x in bucket if x is not e]
                if not bucket:
                    del self._cells[cell]

    def containing(self, lat: float, lon: float, margin_m: float = 0.0) -> list[ZoneEntry]:
        """Zones whose circle (grown by margin_m, at most pad_m) contains the point, nearest first."""
        margin_m = min(margin_m, self.pad_m)
        c = self.cell_deg
        found: list[tuple[float, ZoneEntry]] = []
        for e in self._cells.get((math.floor(lat / c), math.floor(lon / c)), ()):
            d = distance_m(lat, lon, e.lat, e.lon)
            if d <= e.radius_m + margin_m:
                found.append((d, e))
        for e in self._big:
            d = distance_m(lat, lon, e.lat, e.lon)
            if d <= e.radius_m + margin_m:
                found.append((d, e))
        found.sort(key=lambda de: de[0])
        return [e for _, e in found]
