"""The wire formats of CONTRACT section 1 as pydantic models.

These document the formats (JSON schema, OpenAPI, docs/ingest.md) and serve tools that build messages,
such as the simulators. The ingest hot path does not use them: `devices.decode` validates the same rules
by hand, several times faster, and tests/test_decode.py checks that both agree on every example.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

from devices.reading import Reading
from kawal.timeutil import EPOCH_2000, parse_time
from kawal.trips import ID_PATTERN

TrackerId = Annotated[str, Field(pattern=ID_PATTERN)]
Number = StrictInt | StrictFloat
MAX_FUTURE_S = 24 * 3600.0


def _finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError("must be finite")
    return None if v is None else float(v)


class _Location(BaseModel):
    """Fields shared by the native reading and the OwnTracks location (after renaming)."""

    model_config = ConfigDict(extra="allow", strict=False)

    lat: Annotated[Number, Field(ge=-90, le=90, description="WGS 84 latitude, degrees")] | None = None
    lon: Annotated[Number, Field(ge=-180, le=180, description="WGS 84 longitude, degrees")] | None = None

    @field_validator("lat", "lon", mode="before")
    @classmethod
    def _check_finite(cls, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("must be finite")
        return v

    @model_validator(mode="after")
    def _pair(self) -> _Location:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be sent together")
        return self


def _check_ts(value: Any, now: float | None) -> float:
    ts = parse_time(value)
    if now is not None and ts > now + MAX_FUTURE_S:
        raise ValueError("ts is more than 24 hours ahead of the server clock")
    if ts < EPOCH_2000:
        raise ValueError("ts is before 2000-01-01")
    return ts


class NativeReading(_Location):
    """One reading on `kawal/v1/{tracker_id}/telemetry`; the payload is one of these or an array of 1..1000.

    Unknown fields are kept as extra attributes. Validate with `context={"now": wall_clock}` to apply the
    24-hour future limit.
    """

    ts: Annotated[
        Number | str,
        Field(description="Unix seconds (may be fractional) or an RFC 3339 time with offset"),
    ]
    seq: (
        Annotated[
            StrictInt, Field(ge=0, le=0x7FFFFFFFFFFFFFFF, description="per-tracker counter, +1 per reading")
        ]
        | None
    ) = None
    id: TrackerId | None = Field(None, description="tracker id; must equal the one in the topic")
    acc: Annotated[Number, Field(ge=0, description="horizontal accuracy (68 % radius), metres")] | None = None
    spd: Annotated[Number, Field(ge=0, description="speed, km/h")] | None = None
    hdg: Annotated[Number, Field(ge=0, le=360, description="heading, degrees")] | None = None
    bat: Annotated[Number, Field(ge=0, le=100, description="battery, percent")] | None = None
    seal: Literal["closed", "open", "tampered"] | None = Field(None, description="seal-sensor state at ts")

    @field_validator("acc", "spd", "hdg", "bat", mode="before")
    @classmethod
    def _finite_numbers(cls, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("must be finite")
        return v

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, v: Any, info: Any) -> Any:
        now = (info.context or {}).get("now") if info is not None else None
        _check_ts(v, now)
        return v

    def ts_seconds(self) -> float:
        return parse_time(self.ts)

    def to_reading(self, tracker_id: str) -> Reading:
        extra = dict(self.model_extra) if self.model_extra else None
        return Reading(
            tracker_id=tracker_id,
            ts=self.ts_seconds(),
            lat=_finite(self.lat),
            lon=_finite(self.lon),
            seq=self.seq,
            acc=_finite(self.acc),
            spd=_finite(self.spd),
            hdg=_finite(self.hdg),
            bat=_finite(self.bat),
            seal=self.seal,
            extra=extra,
        )


class OwnTracksLocation(BaseModel):
    """An OwnTracks `location` message on `owntracks/{user}/{device}` (tracker id `{user}.{device}`).

    Mapping: tst->ts, lat/lon, acc, vel (km/h)->spd, cog->hdg, batt->bat. Other fields are kept as extra;
    messages whose `_type` is not `location` are ignored.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type_: Literal["location"] = Field("location", alias="_type")
    tst: Number | str = Field(description="Unix seconds of the fix")
    lat: Annotated[Number, Field(ge=-90, le=90)] | None = None
    lon: Annotated[Number, Field(ge=-180, le=180)] | None = None
    acc: Annotated[Number, Field(ge=0)] | None = None
    vel: (
        Annotated[Number, Field(ge=-1, description="km/h; -1 (unknown on iOS) is treated as absent")] | None
    ) = None
    cog: Annotated[Number, Field(ge=-1, le=360, description="degrees; -1 is treated as absent")] | None = None
    batt: Annotated[Number, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _pair(self) -> OwnTracksLocation:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be sent together")
        return self

    def to_native(self) -> NativeReading:
        body: dict[str, Any] = dict(self.model_extra or {})
        body["ts"] = self.tst
        for src, dst in (
            ("lat", "lat"),
            ("lon", "lon"),
            ("acc", "acc"),
            ("vel", "spd"),
            ("cog", "hdg"),
            ("batt", "bat"),
        ):
            v = getattr(self, src)
            if v is not None and not (dst in ("spd", "hdg") and v == -1):
                body[dst] = v
        return NativeReading.model_validate(body)


class Status(BaseModel):
    """The payload of `kawal/v1/{tracker_id}/status` (sent retained; `offline` is the Last Will)."""

    status: Literal["online", "offline"]

    @classmethod
    def parse(cls, payload: bytes) -> Status:
        return cls(status=payload.decode("utf-8").strip())


def telemetry_json_schema() -> dict[str, Any]:
    """JSON schema of a telemetry payload: one reading or an array of 1 to 1000."""
    one = NativeReading.model_json_schema()
    defs = one.pop("$defs", {})
    schema: dict[str, Any] = {
        "title": "Kawal telemetry payload",
        "oneOf": [
            {"$ref": "#/$defs/NativeReading"},
            {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/$defs/NativeReading"}},
        ],
        "$defs": {**defs, "NativeReading": one},
    }
    return schema
