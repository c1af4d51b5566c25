"""Alert types, severities and the Alert as the API returns it (CONTRACT 2.3)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from kawal.places import Place


class AlertType(StrEnum):
    SEAL_BREAK = "seal_break"
    ROUTE_DEVIATION = "route_deviation"
    UNSCHEDULED_STOP = "unscheduled_stop"
    SIGNAL_LOST = "signal_lost"
    UNEXPECTED_MOVEMENT = "unexpected_movement"
    WRONG_DESTINATION = "wrong_destination"
    OVERDUE = "overdue"
    GPS_JUMP = "gps_jump"
    LOW_BATTERY = "low_battery"
    # Version 2. Keep new types appended: detector snapshots store one bit per type in this order.
    FIX_LOST = "fix_lost"
    SPOOFING_SUSPECTED = "spoofing_suspected"
    HANDOVER_MISMATCH = "handover_mismatch"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


SEVERITY: dict[AlertType, Severity] = {
    AlertType.SEAL_BREAK: Severity.CRITICAL,
    AlertType.ROUTE_DEVIATION: Severity.MAJOR,
    AlertType.UNSCHEDULED_STOP: Severity.MAJOR,
    AlertType.SIGNAL_LOST: Severity.MAJOR,
    AlertType.UNEXPECTED_MOVEMENT: Severity.MAJOR,
    AlertType.WRONG_DESTINATION: Severity.MAJOR,
    AlertType.OVERDUE: Severity.MINOR,
    AlertType.GPS_JUMP: Severity.WARNING,
    AlertType.LOW_BATTERY: Severity.WARNING,
    AlertType.FIX_LOST: Severity.MAJOR,
    AlertType.SPOOFING_SUSPECTED: Severity.MAJOR,
    AlertType.HANDOVER_MISMATCH: Severity.MAJOR,
}

# A seal break is evidence, and so is a suspected spoofing or replay: only a person may close them.
NEVER_AUTO_RESOLVE: frozenset[AlertType] = frozenset({AlertType.SEAL_BREAK, AlertType.SPOOFING_SUSPECTED})


class AlertHistoryEntry(BaseModel):
    """One change of an alert: who made it and when (``kawal`` for the detectors)."""

    at: str = Field(..., description="server wall-clock time of the change, RFC 3339 UTC")
    actor: str = Field(..., description="token name, or `kawal` for a detector")
    action: str = Field(..., description="raise, update, reopen, ack, resolve or auto_resolve")
    status: AlertStatus = Field(..., description="the status after the change")
    note: str | None = None
    count: int | None = Field(None, description="for `update`: how many repeats this entry stands for")


class Alert(BaseModel):
    """One alert. Times are RFC 3339 in UTC."""

    id: str
    type: AlertType
    severity: Severity
    status: AlertStatus
    trip_id: str | None
    crate_id: str | None
    tracker_id: str
    ts: str = Field(..., description="event time at which the condition began")
    raised_at: str = Field(..., description="server wall-clock time when the alert was created")
    lat: float | None = None
    lon: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    place: Place | None = Field(
        None,
        description="version 2: the kecamatan and desa that contain the position (desa null in a gap between "
        "villages), or null without a position or outside every known area; the area codes are an extension",
    )
    # Extensions of CONTRACT 2.3.
    updated_at: str | None = Field(None, description="server wall-clock time of the last change")
    last_ts: str | None = Field(None, description="event time of the latest raise of this condition")
    history: list[AlertHistoryEntry] = Field(
        default_factory=list, description="every status change, who made it and when (oldest first)"
    )


class AlertAction(StrEnum):
    RAISE = "raise"  # the condition holds: create the alert, or update the unresolved one
    RESOLVE = "resolve"  # the condition ended: resolve the unresolved one, if the type allows it


class AlertEvent(BaseModel):
    """What a detector emits; the alert store turns it into an Alert change."""

    action: AlertAction
    type: AlertType
    tracker_id: str
    trip_id: str | None = None
    crate_id: str | None = None
    ts: float  # event time (Unix seconds) at which the condition began, or ended for RESOLVE
    lat: float | None = None
    lon: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
