"""Request and response bodies of the HTTP API (beyond the shared Trip and Alert models).

Every time value is RFC 3339 in UTC on the way out.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.model import Alert
from api.auth import NAME_PATTERN, Role
from kawal.places import Place
from kawal.trips import ID_PATTERN, Trip

CrateState = Literal["in_storage", "in_transit", "arrived", "alerting"]
CRATE_STATES: tuple[CrateState, ...] = ("in_storage", "in_transit", "arrived", "alerting")

_ALERT_EXAMPLE: dict[str, Any] = {
    "id": "01JDB7Z3Q5M9X8Y2K4N6P0R1ST",
    "type": "seal_break",
    "severity": "critical",
    "status": "acknowledged",
    "trip_id": "T-1",
    "crate_id": "JBG-KS-0001",
    "tracker_id": "TRK-0001",
    "ts": "2024-11-20T01:15:30.000Z",
    "raised_at": "2024-11-20T01:15:30.120Z",
    "lat": -7.56,
    "lon": 112.23,
    "details": {"seal": "open"},
    "place": {"kecamatan": "Jombang", "desa": "Jombatan", "kecamatan_code": "35.17.09", "desa_code": "35.17.09.1002"},
    "updated_at": "2024-11-20T01:17:02.431Z",
    "last_ts": "2024-11-20T01:15:30.000Z",
    "history": [
        {
            "at": "2024-11-20T01:15:30.120Z",
            "actor": "kawal",
            "action": "raise",
            "status": "open",
            "note": None,
            "count": None,
        },
        {
            "at": "2024-11-20T01:17:02.431Z",
            "actor": "ops-budi",
            "action": "ack",
            "status": "acknowledged",
            "note": "police escort called",
            "count": None,
        },
    ],
}
ALERT_EXAMPLE = _ALERT_EXAMPLE


class ErrorOut(BaseModel):
    detail: str = Field(..., description="what went wrong")
    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "unknown token"}]})


class AlertList(BaseModel):
    items: list[Alert]
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_ALERT_EXAMPLE]}]})


class NoteIn(BaseModel):
    note: str | None = Field(None, max_length=4000, description="why; kept in the alert history and audit log")
    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "driver reached; seal replaced"}]})


TRIP_EXAMPLE: dict[str, Any] = {
    "trip_id": "T-1",
    "crate_id": "JBG-KS-0001",
    "tracker_id": "TRK-0001",
    "origin": {"name": "Gudang KPU Jombang", "lat": -7.546, "lon": 112.233, "radius_m": 150.0},
    "destination": {
        "name": "PPK Diwek",
        "lat": -7.585,
        "lon": 112.23,
        "radius_m": 150.0,
        "open_after": "2024-11-26T23:00:00.000Z",
    },
    "route": [[-7.546, 112.233], [-7.56, 112.231], [-7.585, 112.23]],
    "stops": [{"name": "Pos Polisi Diwek", "lat": -7.57, "lon": 112.2305, "radius_m": 100.0}],
    "depart_after": "2024-11-20T00:00:00.000Z",
    "arrive_by": "2024-11-20T03:00:00.000Z",
    "corridor_m": 200.0,
    "max_stop_min": 10.0,
    "max_silence_min": 15.0,
    "district": "Diwek",
    "created_at": "2024-11-19T08:00:00.000Z",
    "updated_at": "2024-11-19T08:00:00.000Z",
}


class TripList(BaseModel):
    items: list[Trip]
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [TRIP_EXAMPLE]}]})


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


class TokenIn(BaseModel):
    name: str = Field(..., pattern=NAME_PATTERN, description="who holds the token; shown in the audit log")
    role: Role
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "ops-budi", "role": "operator"}]})


class TokenOut(BaseModel):
    name: str
    role: Role
    token: str = Field(..., description="the token itself; it is shown only this once")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "ops-budi",
                    "role": "operator",
                    "token": "kwl_3q2-7wEXAMPLEtokenZ1yV0b8c9d0e1f2a3b4c5d6e7f",
                }
            ]
        }
    )


class RejectedItem(BaseModel):
    received_at: str
    topic: str
    reason: str = Field(..., description="reason code, as in kawal_readings_rejected_total{reason}")
    detail: str | None = Field(None, description="human-readable detail")
    payload: str = Field(..., description="the payload (at most 4 KiB), as text or base64")
    payload_encoding: Literal["text", "base64"] = Field(..., description="base64 when it is not UTF-8")


class RejectedList(BaseModel):
    items: list[RejectedItem]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "received_at": "2024-11-20T01:15:31.002Z",
                            "topic": "kawal/v1/TRK-0001/telemetry",
                            "reason": "lat_out_of_range",
                            "detail": "lat 123.0 is outside [-90, 90]",
                            "payload": '{"ts": 1732065330, "lat": 123.0, "lon": 112.2}',
                            "payload_encoding": "text",
                        }
                    ]
                }
            ]
        }
    )


class Me(BaseModel):
    name: str
    role: Role
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "ops-budi", "role": "operator"}]})


class ConfigOut(BaseModel):
    tile_url: str | None = Field(None, description="base-map tile URL template for the dashboard, if set")
    version: str
    clock: Literal["wall", "event"]
    now: str | None = Field(
        None,
        description="the service's time for time-driven checks (RFC 3339): wall time, or with the event clock "
        "the latest reading time (null before the first); the dashboard measures ages against it",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"tile_url": None, "version": "0.1.0", "clock": "wall", "now": "2024-11-25T02:00:00Z"}]
        }
    )


class Tracker(BaseModel):
    tracker_id: str
    crate_id: str | None
    status: str | None = Field(None, description="last MQTT status message: online or offline")
    status_at: str | None = None
    created_at: str | None = None
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tracker_id": "TRK-0001",
                    "crate_id": "JBG-KS-0001",
                    "status": "online",
                    "status_at": "2024-11-20T00:01:02.000Z",
                    "created_at": "2024-11-19T08:00:00.000Z",
                }
            ]
        }
    )


class TrackerList(BaseModel):
    items: list[Tracker]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "tracker_id": "TRK-0001",
                            "crate_id": "JBG-KS-0001",
                            "status": "offline",
                            "status_at": "2024-11-20T02:00:00.000Z",
                            "created_at": "2024-11-19T08:00:00.000Z",
                        }
                    ]
                }
            ]
        }
    )


class TrackerIn(BaseModel):
    crate_id: str | None = Field(..., pattern=ID_PATTERN, description="the crate to fix it to; null detaches")
    model_config = ConfigDict(json_schema_extra={"examples": [{"crate_id": "JBG-KS-0001"}]})


class AuditRecordOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    data: Any
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    items: list[AuditRecordOut]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "seq": 1,
                            "at": "2024-11-19T08:00:00.000Z",
                            "actor": "admin-env",
                            "action": "trip.create",
                            "subject": "trip:T-1",
                            "data": {"crate_id": "JBG-KS-0001", "tracker_id": "TRK-0001"},
                            "prev_hash": "0" * 64,
                            "hash": "9f2c5d0c1c8e4e0f6a7b3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a",
                        }
                    ]
                }
            ]
        }
    )


class Health(BaseModel):
    status: Literal["ok", "starting", "unavailable"]
    reason: str | None = Field(None, description="why not ready, the reasons joined by '; ' (only with 503)")
    reasons: list[str] | None = Field(None, description="every reason it is not ready (only with 503)")
