"""Trips: one leg of a crate's journey, with its planned route, zones and schedule (CONTRACT 2.2)."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from kawal.timeutil import parse_time, rfc3339
from storage import Connection, Database

# Ids of trackers, crates and trips (CONTRACT: `[A-Za-z0-9._-]{1,64}`); one definition for every check.
ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ID_RE = re.compile(ID_PATTERN)
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
# In: RFC 3339 or Unix seconds (the schema says so); out: RFC 3339 UTC, by the serializers below.
TimeIn = Annotated[
    float,
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
         "description": "RFC 3339 with an offset, or Unix seconds"},
        mode="validation",
    ),
]

# Documented defaults for the per-trip thresholds (see docs/detection.md for where each comes from).
DEFAULT_CORRIDOR_M = 200.0
DEFAULT_MAX_STOP_MIN = 10.0
DEFAULT_MAX_SILENCE_MIN = 15.0
DEFAULT_ZONE_RADIUS_M = 150.0
DEFAULT_STOP_RADIUS_M = 100.0
_BOOKKEEPING = frozenset({"trip_id", "created_at", "updated_at", "handover_at"})
# A seal number as printed on the cable tie or sticker (CONTRACT 2.2, version 2).
SealNumber = Annotated[str, Field(min_length=1, max_length=64)]
MAX_SEALS = 32
# LIMIT with an OFFSET but no limit: both backends take the largest BIGINT as "all rows".
_NO_LIMIT = sys.maxsize


# Trip times must be representable as RFC 3339 (years 1970 to 9999).
_MAX_TIME = 253402300799.0


def _unix(v: Any) -> float:
    t = parse_time(v)
    if not 0.0 <= t <= _MAX_TIME:
        raise ValueError("time must be between 1970-01-01 and 9999-12-31")
    return t


class Zone(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(..., max_length=200)
    lat: float = Field(..., ge=-90, le=90)
    lon: float = Field(..., ge=-180, le=180)
    radius_m: float = Field(DEFAULT_ZONE_RADIUS_M, gt=0, le=50_000)


class Destination(Zone):
    open_after: TimeIn | None = Field(
        None, description="from this time on, opening the seal inside the zone is expected"
    )

    @field_validator("open_after", mode="before")
    @classmethod
    def _parse_open_after(cls, v: Any) -> float | None:
        return None if v is None else _unix(v)

    @field_serializer("open_after")
    def _ser_open_after(self, v: float | None) -> str | None:
        return rfc3339(v)


class Stop(Zone):
    radius_m: float = Field(DEFAULT_STOP_RADIUS_M, gt=0, le=50_000)


# A valid body (Jombang warehouse to PPK Diwek): the schema's example, and the tests' base trip.
TRIP_IN_EXAMPLE: dict[str, Any] = {
    "crate_id": "JBG-KS-0001",
    "tracker_id": "TRK-0001",
    "origin": {"name": "Gudang KPU Jombang", "lat": -7.5460, "lon": 112.2330, "radius_m": 150},
    "destination": {
        "name": "PPK Diwek",
        "lat": -7.5850,
        "lon": 112.2300,
        "radius_m": 150,
        "open_after": "2024-11-27T06:00:00+07:00",
    },
    "route": [[-7.5460, 112.2330], [-7.5600, 112.2310], [-7.5850, 112.2300]],
    "stops": [{"name": "Pos Polisi Diwek", "lat": -7.5700, "lon": 112.2305, "radius_m": 100}],
    "depart_after": "2024-11-20T07:00:00+07:00",
    "arrive_by": "2024-11-20T10:00:00+07:00",
    "corridor_m": 200,
    "max_stop_min": 10,
    "max_silence_min": 15,
}


class TripIn(BaseModel):
    """The body of PUT /api/v1/trips/{trip_id}. Times accept RFC 3339 or Unix seconds."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": TRIP_IN_EXAMPLE})

    crate_id: Identifier
    tracker_id: Identifier
    origin: Zone
    destination: Destination
    route: list[tuple[float, float]] = Field(..., min_length=2, max_length=100_000)
    stops: list[Stop] = Field(default_factory=list, max_length=1000)
    depart_after: TimeIn
    arrive_by: TimeIn
    corridor_m: float = Field(DEFAULT_CORRIDOR_M, gt=0, le=100_000)
    max_stop_min: float = Field(DEFAULT_MAX_STOP_MIN, gt=0, le=7 * 24 * 60)
    max_silence_min: float = Field(DEFAULT_MAX_SILENCE_MIN, gt=0, le=7 * 24 * 60)
    # Version 2: chain of custody (docs/custody.md).
    seals: list[SealNumber] | None = Field(
        None, max_length=MAX_SEALS, description="numbers of the seals fitted to the crate for this leg"
    )
    previous_trip_id: Identifier | None = Field(None, description="the leg before this one, same crate")
    direction: Literal["outbound", "return"] = Field("outbound", description="return: after counting")

    @field_validator("seals")
    @classmethod
    def _strip_seals(cls, seals: list[str] | None) -> list[str] | None:
        if seals is None:
            return None
        out = [s.strip() for s in seals]
        if any(not s for s in out):
            raise ValueError("a seal number may not be blank")
        return out

    @field_validator("depart_after", "arrive_by", mode="before")
    @classmethod
    def _parse_times(cls, v: Any) -> float:
        return _unix(v)

    @field_validator("route")
    @classmethod
    def _check_route(cls, route: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for i, (lat, lon) in enumerate(route):
            if not (-90 <= lat <= 90) or not (-180 <= lon <= 180):
                raise ValueError(f"route point {i} is out of range: [{lat}, {lon}]")
        return route

    @model_validator(mode="after")
    def _check_schedule(self) -> TripIn:
        if self.arrive_by <= self.depart_after:
            raise ValueError("arrive_by must come after depart_after")
        return self

    @field_serializer("depart_after", "arrive_by")
    def _ser_times(self, v: float) -> str | None:
        return rfc3339(v)


class Trip(TripIn):
    """A stored trip: the body plus its id and bookkeeping times."""

    trip_id: Identifier
    created_at: float | None = None
    updated_at: float | None = None
    # Set by the store when the trip's handover is recorded (CONTRACT 2.6): the trip ended then.
    handover_at: float | None = None

    @field_validator("created_at", "updated_at", "handover_at", mode="before")
    @classmethod
    def _parse_bookkeeping(cls, v: Any) -> float | None:
        return None if v is None else _unix(v)

    @field_serializer("created_at", "updated_at", "handover_at")
    def _ser_bookkeeping(self, v: float | None) -> str | None:
        return rfc3339(v)


class TripRepository:
    """Trips in the database. Readers get Trip objects; times are stored as Unix seconds."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, trip_id: str, body: TripIn, now: float | None = None) -> tuple[Trip, bool]:
        """Create or replace. Returns (trip, created)."""
        now = time.time() if now is None else now
        with self.db.write() as c:
            return self.put_in(c, trip_id, body, now)

    def put_in(self, c: Connection, trip_id: str, body: TripIn, now: float) -> tuple[Trip, bool]:
        """`put` inside the caller's write transaction (bulk imports, audit records in the same commit)."""
        row = c.execute("SELECT created_at, handover_at FROM trips WHERE trip_id = ?", (trip_id,)).fetchone()
        created_at = row["created_at"] if row else now
        # A replaced trip keeps its recorded handover: custody is not undone by editing the plan.
        handover_at = row["handover_at"] if row else None
        # The id and bookkeeping times are the store's, whatever extra fields the body carried.
        fields = {k: v for k, v in body.model_dump(mode="json").items() if k not in _BOOKKEEPING}
        trip = Trip(**fields, trip_id=trip_id, created_at=created_at, updated_at=now, handover_at=handover_at)
        c.execute(
            "INSERT INTO trips (trip_id, tracker_id, crate_id, depart_after, arrive_by, body,"
            " created_at, updated_at, previous_trip_id, direction) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (trip_id) DO UPDATE SET"
            " tracker_id = excluded.tracker_id, crate_id = excluded.crate_id,"
            " depart_after = excluded.depart_after, arrive_by = excluded.arrive_by, body = excluded.body,"
            " created_at = excluded.created_at, updated_at = excluded.updated_at,"
            " previous_trip_id = excluded.previous_trip_id, direction = excluded.direction",
            (
                trip_id,
                trip.tracker_id,
                trip.crate_id,
                trip.depart_after,
                trip.arrive_by,
                trip.model_dump_json(),
                created_at,
                now,
                trip.previous_trip_id,
                trip.direction,
            ),
        )
        return trip, row is None

    def end_in(self, c: Connection, trip: Trip, at: float, now: float) -> Trip:
        """Record that the trip ended at `at` (its handover), inside the caller's write transaction."""
        ended = trip.model_copy(update={"handover_at": at, "updated_at": now})
        c.execute(
            "UPDATE trips SET handover_at = ?, updated_at = ?, body = ? WHERE trip_id = ?",
            (at, now, ended.model_dump_json(), trip.trip_id),
        )
        return ended

    def get(self, trip_id: str) -> Trip | None:
        row = self.db.conn().execute("SELECT body FROM trips WHERE trip_id = ?", (trip_id,)).fetchone()
        return None if row is None else Trip.model_validate(json.loads(row["body"]))

    def list(
        self,
        tracker_id: str | None = None,
        crate_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trip]:
        q = "SELECT body FROM trips"
        args: list[str | int] = []
        where = []
        if tracker_id is not None:
            where.append("tracker_id = ?")
            args.append(tracker_id)
        if crate_id is not None:
            where.append("crate_id = ?")
            args.append(crate_id)
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY depart_after, trip_id"
        if limit is not None or offset:
            q += " LIMIT ? OFFSET ?"
            args += [_NO_LIMIT if limit is None else limit, offset]
        return [Trip.model_validate(json.loads(r["body"])) for r in self.db.conn().execute(q, args)]


class _Scheduled(Protocol):
    @property
    def trip_id(self) -> str: ...
    @property
    def depart_after(self) -> float: ...


_T = TypeVar("_T", bound=_Scheduled)


def bound_trip(trips: Sequence[_T], at: float) -> _T | None:
    """The trip a tracker is bound to at time `at` (CONTRACT 2.2), of Trips or anything with their
    `trip_id` and `depart_after` (the crate view's TripInfo).

    The latest trip whose depart_after has passed; before the first departure, the first trip
    (its crate is then in storage at that trip's origin).
    """
    if not trips:
        return None
    started = [t for t in trips if t.depart_after <= at]
    if started:
        return max(started, key=lambda t: (t.depart_after, t.trip_id))
    return min(trips, key=lambda t: (t.depart_after, t.trip_id))
