"""Response bodies of the crate endpoints (CONTRACT 2.4): a crate, its fixes and track, and the summary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kawal.places import Place

CrateState = Literal["in_storage", "in_transit", "arrived", "alerting"]
CRATE_STATES: tuple[CrateState, ...] = ("in_storage", "in_transit", "arrived", "alerting")


# One reading, the example of a fix wherever one appears (a track, a crate's last fix).
_FIX_EXAMPLE: dict[str, Any] = {
    "ts": "2024-11-20T01:15:30.000Z",
    "lat": -7.56,
    "lon": 112.231,
    "acc": 8.0,
    "spd": 32.5,
    "hdg": 184.0,
    "bat": 87.0,
}


class Fix(BaseModel):
    """One stored reading with a position."""

    ts: str = Field(..., description="reading time (tracker clock), RFC 3339 UTC")
    lat: float
    lon: float
    acc: float | None = Field(None, description="metres, 68 % radius")
    spd: float | None = Field(None, description="km/h")
    hdg: float | None = Field(None, description="degrees")
    bat: float | None = Field(None, description="percent")
    model_config = ConfigDict(json_schema_extra={"examples": [_FIX_EXAMPLE]})


class TrackPoint(Fix):
    """A point of the track: a fix, plus the seal state when the reading carried one (extension)."""

    seal: str | None = Field(None, description="seal state in this reading, when it carried one")


class FixList(BaseModel):
    items: list[TrackPoint]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "ts": "2024-11-20T01:15:00.000Z",
                            "lat": -7.559,
                            "lon": 112.2311,
                            "acc": 9.0,
                            "spd": 31.0,
                            "hdg": 183.0,
                            "bat": 87.0,
                        },
                        _FIX_EXAMPLE,
                    ]
                }
            ]
        }
    )


class Crate(BaseModel):
    """A crate's status (CONTRACT 2.4), with the dashboard's extensions."""

    crate_id: str
    tracker_id: str | None = Field(..., description="the tracker fixed to the crate (its current trip's)")
    trip_id: str | None = Field(..., description="the trip the crate is bound to now, if any")
    last_seen: str | None = Field(..., description="time of the tracker's latest reading")
    seal: Literal["closed", "open", "tampered"] | None = Field(..., description="latest reported seal state")
    last_fix: Fix | None
    # Extensions.
    seal_at: str | None = Field(None, description="time of the latest reading that reported the seal")
    state: CrateState = Field("in_storage", description="in_storage, in_transit, arrived, or alerting")
    district: str | None = Field(None, description="the trip's `district` field, else its destination name")
    destination: str | None = Field(None, description="the current trip's destination name")
    open_alerts: int = Field(0, description="unresolved alerts of the crate's tracker")
    place: Place | None = Field(
        None, description="the kecamatan and desa of the latest fix (as an alert's `place`), or null"
    )
    seq_missing: int | None = Field(
        None,
        description="readings the tracker never delivered, counted from gaps in its `seq` (CONTRACT 1.1; a reboot "
        "that resets seq is not a gap); null before a reading with `seq`. Updated every few seconds",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "crate_id": "JBG-KS-0001",
                    "tracker_id": "TRK-0001",
                    "trip_id": "T-1",
                    "last_seen": "2024-11-20T01:15:30.000Z",
                    "seal": "closed",
                    "last_fix": _FIX_EXAMPLE,
                    "seal_at": "2024-11-20T01:15:30.000Z",
                    "state": "in_transit",
                    "district": "Diwek",
                    "destination": "PPK Diwek",
                    "open_alerts": 0,
                }
            ]
        }
    )


class CrateList(BaseModel):
    items: list[Crate]
    total: int = Field(..., description="crates matching the filters, before limit/offset")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "crate_id": "JBG-KS-0002",
                            "tracker_id": "TRK-0002",
                            "trip_id": "T-2",
                            "last_seen": None,
                            "seal": None,
                            "last_fix": None,
                            "seal_at": None,
                            "state": "in_storage",
                            "district": "Ploso",
                            "destination": "PPK Ploso",
                            "open_alerts": 0,
                        }
                    ],
                    "total": 1,
                }
            ]
        }
    )


class DistrictCount(BaseModel):
    district: str | None
    total: int
    by_state: dict[str, int]


class KecamatanCount(BaseModel):
    """Crates by where they are (the kecamatan of their latest fix) and open alerts by their place."""

    kecamatan: str | None = Field(..., description="null: crates with no fix, or outside every known area")
    code: str | None = Field(None, description="the kecamatan's area code")
    crates: int = Field(..., description="crates whose latest fix lies in the kecamatan")
    by_state: dict[str, int]
    open_alerts: int = Field(..., description="unresolved alerts whose place is in the kecamatan")


class Summary(BaseModel):
    total: int = Field(..., description="every known crate")
    by_state: dict[str, int] = Field(..., description="crates per state (every state is present)")
    by_district: list[DistrictCount]
    open_alerts: int = Field(..., description="unresolved alerts")
    open_alerts_by_type: dict[str, int]
    by_kecamatan: list[KecamatanCount] = Field(
        default_factory=list,
        description="every kecamatan of the boundaries (by code), then crates and alerts with no place",
    )
    at: str = Field(..., description="the time the states were computed for")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total": 3,
                    "by_state": {"in_storage": 1, "in_transit": 1, "arrived": 0, "alerting": 1},
                    "by_district": [
                        {
                            "district": "Diwek",
                            "total": 2,
                            "by_state": {"in_storage": 1, "in_transit": 0, "arrived": 0, "alerting": 1},
                        },
                        {
                            "district": "Ploso",
                            "total": 1,
                            "by_state": {"in_storage": 0, "in_transit": 1, "arrived": 0, "alerting": 0},
                        },
                    ],
                    "open_alerts": 1,
                    "open_alerts_by_type": {"seal_break": 1},
                    "at": "2024-11-20T01:16:00.000Z",
                }
            ]
        }
    )
