"""Handovers (CONTRACT 2.6): a receiving officer signs for a crate at the end of a leg.

A handover is written in one transaction with its audit record (action ``custody.handover``), the
``handover_mismatch`` alert it may raise, and the end of its trip. The audit record holds the whole
handover, so `verify_handovers` (run by ``kawal audit verify``) notices a row edited behind the service's
back. The handovers table is append-only through SQL (migration 0011).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.model import AlertAction, AlertEvent, AlertType
from alerts.store import AlertStore, PendingRaise
from kawal.geodesy import distance_m
from kawal.timeutil import parse_time, rfc3339
from kawal.trips import MAX_SEALS, SealNumber, TimeIn, Trip, TripRepository
from storage import Connection, Database, IntegrityError

ACTION = "custody.handover"
MAX_FUTURE_S = 24 * 3600.0
EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# The reasons a handover is a mismatch, as `details.reasons` lists them.
REASON_SEALS = "seals_differ"
REASON_PLACE = "outside_destination"
REASON_NO_FIX = "no_fix"
REASON_SEAL_CHANGE = "seal_change_without_handover"


class HandoverConflict(ValueError):
    """The trip already has its handover."""


class TripNotFound(LookupError):
    pass


class Receiver(BaseModel):
    name: str = Field(..., min_length=1, max_length=200, description="the receiving officer")
    role: str | None = Field(None, max_length=100, description="e.g. PPK, PPS, KPPS")


class HandoverIn(BaseModel):
    """The body of POST /api/v1/trips/{trip_id}/handover."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "receiver": {"name": "Siti Aminah", "role": "PPK"},
                "seals": ["KPU-3517-0001234"],
                "at": "2024-11-20T09:40:00+07:00",
                "note": "diterima lengkap",
            }
        }
    )

    receiver: Receiver
    seals: list[SealNumber] = Field(default_factory=list, max_length=MAX_SEALS, description="as the receiver read them")
    at: TimeIn | None = Field(None, description="when the crate changed hands; default: now")
    note: str | None = Field(None, max_length=2000)

    @field_validator("at", mode="before")
    @classmethod
    def _parse_at(cls, v: Any) -> float | None:
        if v is None:
            return None
        at = parse_time(v)
        # As for readings (CONTRACT 1.1): nobody signs for a crate a day ahead, or before 2000.
        if at > time.time() + MAX_FUTURE_S:
            raise ValueError("at is more than 24 h ahead of the server's clock")
        if at < EARLIEST:
            raise ValueError("at is before 2000-01-01")
        return at

    @field_validator("seals")
    @classmethod
    def _strip(cls, seals: list[str]) -> list[str]:
        out = [s.strip() for s in seals]
        if any(not s for s in out):
            raise ValueError("a seal number may not be blank")
        return out


class Position(BaseModel):
    ts: str
    lat: float
    lon: float


class Handover(BaseModel):
    """A recorded handover. Times are RFC 3339 in UTC."""

    id: str
    trip_id: str
    crate_id: str
    tracker_id: str
    receiver: Receiver
    seals: list[str]
    at: str
    recorded_by: str = Field(..., description="the name of the token that recorded it")
    recorded_at: str
    position: Position | None = Field(None, description="the tracker's last fix at or before `at`")
    distance_m: float | None = Field(None, description="from that fix to the destination's centre")
    in_destination: bool
    seals_match: bool | None = Field(None, description="null when the trip has no seals")
    note: str | None = None
    alert_id: str | None = Field(None, description="the handover_mismatch this handover raised")
    audit_seq: int
    audit_hash: str = Field(..., description="the hash of its audit record: `kawal audit verify --hash`")


def new_handover_id(now: float) -> str:
    """Time-ordered, like alert ids: 48 bits of milliseconds and 80 random bits, base32."""
    n = (int(now * 1000) & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    return "H" + "".join(_B32[(n >> (5 * i)) & 31] for i in range(25, -1, -1))


def seal_key(seal: str) -> str:
    """Seal numbers compare without case or surrounding space (officers copy them by hand)."""
    return seal.strip().upper()


@dataclass(frozen=True, slots=True)
class SealCheck:
    match: bool | None
    missing: list[str]
    unexpected: list[str]


def check_seals(expected: list[str] | None, read: list[str]) -> SealCheck:
    if not expected:
        return SealCheck(None, [], [])
    want = {seal_key(s): s for s in expected}
    got = {seal_key(s): s for s in read}
    missing = [want[k] for k in sorted(want.keys() - got.keys())]
    unexpected = [got[k] for k in sorted(got.keys() - want.keys())]
    return SealCheck(not missing and not unexpected, missing, unexpected)


def record_data(row: Any) -> dict[str, Any]:
    """A handovers row as its audit record holds it (and as `verify_handovers` compares it)."""
    pos = None
    if row["pos_ts"] is not None:
        pos = {"ts": float(row["pos_ts"]), "lat": float(row["pos_lat"]), "lon": float(row["pos_lon"])}
    return {
        "id": row["id"],
        "trip_id": row["trip_id"],
        "crate_id": row["crate_id"],
        "tracker_id": row["tracker_id"],
        "receiver": {"name": row["receiver_name"], "role": row["receiver_role"]},
        "seals": json.loads(row["seals"]),
        "at": float(row["at"]),
        "recorded_by": row["recorded_by"],
        "recorded_at": float(row["recorded_at"]),
        "position": pos,
        "distance_m": None if row["distance_m"] is None else float(row["distance_m"]),
        "in_destination": bool(row["in_destination"]),
        "seals_match": None if row["seals_match"] is None else bool(row["seals_match"]),
        "note": row["note"],
        "alert_id": row["alert_id"],
    }


def handover_out(row: Any) -> Handover:
    d = record_data(row)
    pos = d["position"]
    return Handover.model_validate(
        {
            **d,
            "at": rfc3339(d["at"]),
            "recorded_at": rfc3339(d["recorded_at"]),
            "position": None if pos is None else {"ts": rfc3339(pos["ts"]), "lat": pos["lat"], "lon": pos["lon"]},
            "audit_seq": int(row["audit_seq"]),
            "audit_hash": str(row["audit_hash"]),
        }
    )


_INSERT = (
    "INSERT INTO handovers (id, trip_id, crate_id, tracker_id, receiver_name, receiver_role, seals, at,"
    " recorded_by, recorded_at, pos_ts, pos_lat, pos_lon, distance_m, in_destination, seals_match, note,"
    " alert_id, audit_seq, audit_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class CustodyStore:
    """Records handovers and reads them back."""

    def __init__(self, db: Database, trips: TripRepository, alerts: AlertStore) -> None:
        self.db = db
        self.trips = trips
        self.alerts = alerts

    def record(self, trip_id: str, body: HandoverIn, actor: str, now: float | None = None) -> tuple[Handover, Trip]:
        """Record the handover that ends `trip_id`. Raises TripNotFound, HandoverConflict."""
        now = time.time() if now is None else now
        at = now if body.at is None else body.at
        pending: PendingRaise | None = None
        try:
            with self.db.write() as c:
                trip_row = c.execute(
                    f"SELECT body FROM trips WHERE trip_id = ?{self.db.row_lock}", (trip_id,)
                ).fetchone()
                if trip_row is None:
                    raise TripNotFound(trip_id)
                if c.execute("SELECT 1 FROM handovers WHERE trip_id = ?", (trip_id,)).fetchone() is not None:
                    raise HandoverConflict(f"trip {trip_id} already has its handover")
                trip = Trip.model_validate(json.loads(trip_row["body"]))
                data = self._assess(c, trip, body, at, actor, now)
                details = data.pop("_details")
                if details["reasons"]:
                    pending = self.alerts.raise_in(c, _mismatch_event(trip, data, details))
                    data["alert_id"] = None if pending is None else pending.change[1].id
                rec = self.alerts.audit.append(c, actor, ACTION, f"trip:{trip_id}", data)
                pos = data["position"] or {}
                c.execute(
                    _INSERT,
                    (
                        data["id"], trip_id, trip.crate_id, trip.tracker_id, body.receiver.name, body.receiver.role,
                        json.dumps(data["seals"]), at, actor, now, pos.get("ts"), pos.get("lat"), pos.get("lon"),
                        data["distance_m"], int(data["in_destination"]),
                        None if data["seals_match"] is None else int(data["seals_match"]),
                        body.note, data["alert_id"], rec.seq, rec.hash,
                    ),
                )  # fmt: skip
                ended = self.trips.end_in(c, trip, at, now)
                row = c.execute("SELECT * FROM handovers WHERE trip_id = ?", (trip_id,)).fetchone()
        except IntegrityError as e:  # a concurrent handover of the same trip won
            raise HandoverConflict(f"trip {trip_id} already has its handover") from e
        if pending is not None:
            self.alerts.publish(pending)
        return handover_out(row), ended

    def _assess(self, c: Connection, trip: Trip, body: HandoverIn, at: float, actor: str, now: float) -> dict[str, Any]:
        """The handover's record, and what differs from the plan (`_details`)."""
        fix = c.execute(
            "SELECT ts, lat, lon FROM readings WHERE tracker_id = ? AND ts <= ? AND lat IS NOT NULL"
            " AND lon IS NOT NULL AND NOT (lat = 0 AND lon = 0) ORDER BY ts DESC, seq DESC LIMIT 1",
            (trip.tracker_id, at),
        ).fetchone()
        dest = trip.destination
        position = None
        dist: float | None = None
        if fix is not None:
            position = {"ts": float(fix["ts"]), "lat": float(fix["lat"]), "lon": float(fix["lon"])}
            dist = round(distance_m(position["lat"], position["lon"], dest.lat, dest.lon), 1)
        inside = dist is not None and math.isfinite(dist) and dist <= dest.radius_m
        seals = check_seals(trip.seals, body.seals)
        reasons: list[str] = []
        if seals.match is False:
            reasons.append(REASON_SEALS)
        if position is None:
            reasons.append(REASON_NO_FIX)
        elif not inside:
            reasons.append(REASON_PLACE)
        details: dict[str, Any] = {
            "reasons": reasons,
            "destination": dest.name,
            "radius_m": dest.radius_m,
            "distance_m": dist,
            "expected_seals": trip.seals or [],
            "read_seals": body.seals,
            "missing_seals": seals.missing,
            "unexpected_seals": seals.unexpected,
            "receiver": body.receiver.model_dump(),
        }
        prev = self._unsigned_seal_change(c, trip)
        if prev is not None:
            reasons.append(REASON_SEAL_CHANGE)
            details["previous_trip_id"] = trip.previous_trip_id
            details["previous_seals"] = prev
        return {
            "id": new_handover_id(now),
            "trip_id": trip.trip_id,
            "crate_id": trip.crate_id,
            "tracker_id": trip.tracker_id,
            "receiver": body.receiver.model_dump(),
            "seals": body.seals,
            "at": at,
            "recorded_by": actor,
            "recorded_at": now,
            "position": position,
            "distance_m": dist,
            "in_destination": inside,
            "seals_match": seals.match,
            "note": body.note,
            "alert_id": None,
            "_details": details,
        }

    def _unsigned_seal_change(self, c: Connection, trip: Trip) -> list[str] | None:
        """The previous leg's seals when they differ from this leg's and nobody signed for that leg."""
        if not trip.previous_trip_id or not trip.seals:
            return None
        row = c.execute("SELECT body FROM trips WHERE trip_id = ?", (trip.previous_trip_id,)).fetchone()
        if row is None:
            return None
        prev = Trip.model_validate(json.loads(row["body"]))
        if not prev.seals or check_seals(prev.seals, trip.seals).match:
            return None
        signed = c.execute("SELECT 1 FROM handovers WHERE trip_id = ?", (prev.trip_id,)).fetchone()
        return None if signed is not None else prev.seals

    def get(self, trip_id: str) -> Handover | None:
        row = self.db.conn().execute("SELECT * FROM handovers WHERE trip_id = ?", (trip_id,)).fetchone()
        return None if row is None else handover_out(row)

    def for_crate(self, crate_id: str) -> list[Handover]:
        rows = self.db.conn().execute("SELECT * FROM handovers WHERE crate_id = ? ORDER BY at, id", (crate_id,))
        return [handover_out(r) for r in rows]


def _mismatch_event(trip: Trip, data: dict[str, Any], details: dict[str, Any]) -> AlertEvent:
    pos = data["position"]
    return AlertEvent(
        action=AlertAction.RAISE,
        type=AlertType.HANDOVER_MISMATCH,
        tracker_id=trip.tracker_id,
        trip_id=trip.trip_id,
        crate_id=trip.crate_id,
        ts=data["at"],
        lat=None if pos is None else pos["lat"],
        lon=None if pos is None else pos["lon"],
        details={"handover_id": data["id"], **details},
    )


@dataclass(frozen=True, slots=True)
class HandoverProblem:
    handover_id: str | None
    audit_seq: int | None
    reason: str


def verify_handovers(db: Database) -> HandoverProblem | None:
    """Every handover row matches its audit record, and every handover record has its row. The first
    problem found, or None. Run after the chain itself is verified (kawal.audit.AuditLog.verify)."""
    with db.read() as c:
        rows = c.execute("SELECT * FROM handovers ORDER BY audit_seq").fetchall()
        seen: set[int] = set()
        for row in rows:
            seq = int(row["audit_seq"])
            seen.add(seq)
            rec = c.execute("SELECT action, data, hash FROM audit WHERE seq = ?", (seq,)).fetchone()
            if rec is None or rec["action"] != ACTION:
                return HandoverProblem(row["id"], seq, f"handover {row['id']} has no audit record {seq}")
            if rec["hash"] != row["audit_hash"]:
                return HandoverProblem(row["id"], seq, f"handover {row['id']} names another hash than record {seq}")
            if json.loads(rec["data"]) != record_data(row):
                return HandoverProblem(
                    row["id"], seq, f"handover {row['id']} was altered: it differs from audit record {seq}"
                )
        for rec in c.execute("SELECT seq, data FROM audit WHERE action = ? ORDER BY seq", (ACTION,)).fetchall():
            if int(rec["seq"]) not in seen:
                hid = json.loads(rec["data"]).get("id")
                return HandoverProblem(hid, int(rec["seq"]), f"handover {hid} of audit record {rec['seq']} was deleted")
    return None
