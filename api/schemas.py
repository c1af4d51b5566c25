"""Request and response bodies of the HTTP API (beyond the shared Trip and Alert models).

Every time value is RFC 3339 in UTC on the way out.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.model import Alert
from api.auth import NAME_PATTERN, Role

# The crate bodies (api/crate_schemas.py) stay importable from here.
from api.crate_schemas import (  # noqa: F401
    CRATE_STATES,
    Crate,
    CrateList,
    CrateState,
    DistrictCount,
    Fix,
    FixList,
    KecamatanCount,
    Summary,
    TrackPoint,
)
from kawal.trips import ID_PATTERN, Trip

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
