"""The few fields of a trip that the crate view needs (api/crates.py), read from its JSON body once per version."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kawal.timeutil import parse_time
from storage import Connection

# What the view needs of a trip: its keys and its body (the rest is read from the JSON in trip_info, once
# per version of the trip); depart_after from the body too, so it is exactly the Trip's (milliseconds).
TRIP_INFO = "t.trip_id, t.crate_id, t.tracker_id, t.body"
N_TRIP_INFO = 4
# A trip's version: any change through TripRepository sets updated_at (all served by index trips_view).
STAMP = "t.trip_id, t.updated_at, t.crate_id, t.tracker_id"
N_STAMP = 4
_INFO_IN_CHUNK = 500  # trip ids per `IN (...)` when only some trips changed


@dataclass(frozen=True, slots=True)
class TripInfo:
    trip_id: str
    crate_id: str
    tracker_id: str
    depart_after: float
    destination: str
    dest_lat: float
    dest_lon: float
    dest_radius_m: float
    district: str  # the trip's `district` field, else its destination's name
    handover_at: float | None = None  # the trip ended then (CONTRACT 2.6): the crate is in storage after


def _district(value: Any, destination: str) -> str:
    """The trip's `district` field as Trip.model_extra has it (str() of the JSON value) when present and
    not empty, else the destination's name."""
    if value is None or value == "":
        return destination
    return str(value)


def trip_info(r: Sequence[Any]) -> TripInfo:
    """TripInfo from the TRIP_INFO columns."""
    body = orjson.loads(r[3])
    d = body["destination"]
    dest = str(d["name"])
    return TripInfo(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        parse_time(body["depart_after"]),
        dest,
        float(d["lat"]),
        float(d["lon"]),
        float(d["radius_m"]),
        _district(body.get("district"), dest),
        None if body.get("handover_at") is None else parse_time(body["handover_at"]),
    )


class TripInfoCache:
    """TripInfo per trip, read from the trip's body once per version of the trip (its updated_at and key
    columns), so recomputing the fleet does not parse every trip's route again."""

    def __init__(self) -> None:
        # trip_id -> ((updated_at, crate_id, tracker_id), TripInfo)
        self._info: dict[str, tuple[tuple[Any, ...], TripInfo]] = {}

    def resolve(self, conn: Connection, trips: Sequence[Sequence[Any]]) -> dict[str, TripInfo]:
        """TripInfo of the trips whose STAMP columns are `trips`; re-reads the bodies that changed.
        Run it in the read transaction that gave `trips`, so every one of them is found."""
        info = self._info
        stale = [r[0] for r in trips if (hit := info.get(r[0])) is None or hit[0] != r[1:N_STAMP]]
        if stale:
            cur = conn.plain_cursor()
            if len(stale) > len(trips) // 2:
                self._store(cur.execute(f"SELECT {STAMP}, {TRIP_INFO} FROM trips t"))
            else:
                for i in range(0, len(stale), _INFO_IN_CHUNK):
                    chunk = stale[i : i + _INFO_IN_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    self._store(
                        cur.execute(f"SELECT {STAMP}, {TRIP_INFO} FROM trips t WHERE t.trip_id IN ({marks})", chunk)
                    )
        if len(info) > len(trips):  # trips are not deleted today; keep memory bounded anyway
            keep = {r[0] for r in trips}
            self._info = info = {tid: v for tid, v in info.items() if tid in keep}
        return {tid: v[1] for tid, v in info.items()}

    def _store(self, rows: Iterable[Sequence[Any]]) -> None:
        for r in rows:
            self._info[r[0]] = (tuple(r[1:N_STAMP]), trip_info(r[N_STAMP:]))

    def clear(self) -> None:
        self._info.clear()
