"""The data of a simulated distribution: configuration, trips, trackers, ground truth, the Scenario.

`simulators.planner` fills these in; `simulators.streams` turns a TrackerSpec into messages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kawal.trips import DEFAULT_CORRIDOR_M, DEFAULT_MAX_SILENCE_MIN, DEFAULT_MAX_STOP_MIN
from simulators.geo import FloatArray
from simulators.motion import Timeline
from simulators.places import Geography, Place, zone_body
from simulators.roads import RoadNetwork

if TYPE_CHECKING:
    from simulators.custody import HandoverSpec
    from simulators.streams import Message

WIB = timezone(timedelta(hours=7), "WIB")

# Every alert type of CONTRACT 2.3, in the order incidents are assigned (scarcest eligibility first).
INCIDENT_TYPES: tuple[str, ...] = (
    "wrong_destination",
    "unexpected_movement",
    "seal_break",
    "overdue",
    "route_deviation",
    "unscheduled_stop",
    "signal_lost",
    "gps_jump",
    "low_battery",
)
# Events that happen on clean trips and must NOT raise an alert.
BENIGN_TYPES: tuple[str, ...] = ("allowed_stop", "traffic_stop", "authorised_opening", "dead_zone")

# Secondary alerts an incident legitimately causes: not required, and not counted as false alerts.
# A crate taken to the wrong PPK really leaves its corridor, really stops outside its own zones and really
# reaches its own PPK late; a crate carried out of a warehouse at night really is off its route and stopped.
CONSEQUENCES: dict[str, tuple[str, ...]] = {
    "wrong_destination": ("route_deviation", "unscheduled_stop", "overdue"),
    "unexpected_movement": ("route_deviation", "unscheduled_stop"),
    # A jammer that also blocks the modem: the fix-less readings it kept arrive as a backlog afterwards.
    "signal_lost": ("fix_lost",),
}

ACC_PER_SIGMA = math.sqrt(-2.0 * math.log(1.0 - 0.68))  # 68 % radius of a circular 2-D Gaussian, in σ


@dataclass(frozen=True)
class SimConfig:
    """Every knob of a scenario. The defaults are anchored in field practice (docs/simulator.md)."""

    legs: int = 2  # 1: warehouse->PPK; 2: + PPK->PPS next morning; 3: + PPS->TPS on voting day
    lead_s: float = 2 * 3600.0  # from the start to the first departures (crates wait in the warehouse)
    interval_s: tuple[int, int] = (30, 30)  # report interval per tracker, drawn from this range (10-60)
    storage_interval_s: int = 300  # report interval of a crate at rest in storage (motion wakes it)
    owntracks_share: float = 0.2  # share of trackers speaking OwnTracks instead of the native format
    # GPS: per-axis σ per tracker, so reported acc (68 % radius = 1.51 σ) spans about 3-10 m.
    # Newson & Krumm (2009) measured σ ≈ 4.07 m on real drives; that sits in the middle of this range.
    gps_sigma_m: tuple[float, float] = (2.0, 6.6)
    gps_tau_s: float = 60.0  # Gauss–Markov correlation time of the GPS error
    indoor_sigma_factor: float = 1.8  # a crate stored indoors gets weaker, noisier fixes
    multipath_rate: float = 0.003  # share of fixes with a small (15-50 m) multipath error: harmless
    traffic_stop_rate: float = 0.15  # share of junctions where the vehicle waits 15-150 s
    allowed_stop_rate: float = 0.5  # chance a vehicle uses an allowed stop on its route (3-25 min)
    dead_zones_per_trip: float = 0.6  # mean coverage gaps per trip (store-and-forward)
    dead_zone_s: tuple[float, float] = (120.0, 480.0)  # gap length: well under max_silence
    duplicate_rate: float = 0.05  # share of readings sent twice
    shuffle_rate: float = 0.5  # share of backlog batches sent in shuffled order
    resend_batch_rate: float = 0.1  # share of backlog batches sent twice (a lost PUBACK)
    authorised_open_rate: float = 0.5  # share of native crates opened at their last destination after open_after
    incident_weights: Mapping[str, float] | None = None  # type -> weight; None: all nine types equally
    prefix: str = "SIM"  # tracker, crate and trip ids start with it
    attacks: int = 0  # trips per attack kind (simulators.attacks), plus as many benign tracker reboots
    # Thresholds written into each trip; None leaves them out, so the server's documented defaults apply.
    corridor_m: float | None = None
    max_stop_min: float | None = None
    max_silence_min: float | None = None
    tail_s: float = 45 * 60.0  # simulated time after the last planned event, so late checks can fire
    # Chain of custody (simulators/custody.py): share of clean arriving trips with a bad handover.
    handover_mismatch_share: float = 0.05
    returns: bool = False  # with legs=3: after counting, the resealed crate goes back TPS -> PPS -> PPK

    @property
    def corridor(self) -> float:
        return self.corridor_m or DEFAULT_CORRIDOR_M

    @property
    def max_stop(self) -> float:
        return (self.max_stop_min or DEFAULT_MAX_STOP_MIN) * 60.0

    @property
    def max_silence(self) -> float:
        return (self.max_silence_min or DEFAULT_MAX_SILENCE_MIN) * 60.0

    def validate(self) -> None:
        lo, hi = self.interval_s
        if not (1 <= lo <= hi <= 600):
            raise ValueError(f"interval range must be 1..600 s and ordered, got {self.interval_s}")
        if not 1 <= self.legs <= 3:
            raise ValueError("legs must be 1, 2 or 3")
        if self.storage_interval_s * 2 > self.max_silence:
            raise ValueError("storage_interval_s must be under half of max_silence")
        if self.dead_zone_s[1] + hi + 60 > self.max_silence * 0.75:
            raise ValueError("dead zones must stay clearly under max_silence")
        if self.returns and self.legs != 3:
            raise ValueError("return legs follow the count at the TPS: they need legs=3")
        if not 0.0 <= self.handover_mismatch_share <= 1.0:
            raise ValueError("handover_mismatch_share must be in [0, 1]")
        if self.lead_s < 600:
            raise ValueError("lead_s must be at least 10 minutes")
        for name in self.incident_weights or {}:
            if name not in INCIDENT_TYPES:
                raise ValueError(f"unknown incident type {name!r}; known: {', '.join(INCIDENT_TYPES)}")


@dataclass(frozen=True, slots=True)
class StopZone:
    """An allowed stop on a route (police post, fuel station)."""

    name: str
    x: float
    y: float
    lat: float
    lon: float
    radius_m: float = 100.0
    s: float = 0.0  # where the route passes it

    def zone(self) -> dict[str, Any]:
        return zone_body(self.name, self.lat, self.lon, self.radius_m)


@dataclass(slots=True)
class TripSpec:
    """One registered trip (CONTRACT 2.2) plus what the simulator knows about it."""

    trip_id: str
    tracker_id: str
    crate_id: str
    leg: int
    district: str
    origin: Place
    destination: Place
    route: list[tuple[float, float]]  # planned, [lat, lon], points every 50-150 m
    route_xy: FloatArray
    stops: list[StopZone]
    depart_after: float
    arrive_by: float
    open_after: float | None = None
    config: SimConfig = field(default_factory=SimConfig)
    incident: str | None = None  # the type of the incident on this trip, if any
    departure: float = 0.0  # when the vehicle really leaves
    arrival: float | None = None  # when it really comes to rest in its destination zone
    seals: list[str] = field(default_factory=list)  # the crate's seal numbers on this leg (CONTRACT 2.2)
    previous_trip_id: str | None = None
    direction: str = "outbound"  # or "return": back after counting, with new seals

    def body(self) -> dict[str, Any]:
        """The PUT /api/v1/trips/{trip_id} body: CONTRACT 2.2 plus `district`."""
        dest: dict[str, Any] = dict(self.destination.zone())
        if self.open_after is not None:
            dest["open_after"] = wib_iso(self.open_after)
        body: dict[str, Any] = {
            "crate_id": self.crate_id,
            "tracker_id": self.tracker_id,
            "origin": self.origin.zone(),
            "destination": dest,
            "route": [[lat, lon] for lat, lon in self.route],
            "stops": [s.zone() for s in self.stops],
            "depart_after": wib_iso(self.depart_after),
            "arrive_by": wib_iso(self.arrive_by),
            "district": self.district,
        }
        if self.seals:
            body["seals"] = list(self.seals)
        if self.previous_trip_id is not None:
            body["previous_trip_id"] = self.previous_trip_id
        if self.direction != "outbound":
            body["direction"] = self.direction
        for key in ("corridor_m", "max_stop_min", "max_silence_min"):
            value = getattr(self.config, key)
            if value is not None:
                body[key] = value
        return body


@dataclass(slots=True)
class TruthEvent:
    """One labelled event. `expect_alert` events are incidents; the others are benign and must not alarm.

    An alert of `type` on `tracker_id` whose `ts` falls inside `window` detects the incident; alerts of a type
    in `also` inside `also_window` are legitimate consequences (neither required nor false).
    """

    id: str
    type: str
    tracker_id: str
    trip_id: str | None
    crate_id: str
    start: float  # event time the condition began (what the alert's ts should be close to)
    end: float
    window: tuple[float, float]
    expect_alert: bool
    also: tuple[str, ...] = ()
    also_window: tuple[float, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "expect_alert": self.expect_alert,
            "tracker_id": self.tracker_id,
            "trip_id": self.trip_id,
            "crate_id": self.crate_id,
            "start": self.start,
            "start_iso": utc_iso(self.start),
            "end": self.end,
            "window": list(self.window),
            "also": list(self.also),
            "also_window": list(self.also_window) if self.also_window else None,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TruthEvent:
        aw = d.get("also_window")
        return cls(
            id=d["id"],
            type=d["type"],
            tracker_id=d["tracker_id"],
            trip_id=d.get("trip_id"),
            crate_id=d.get("crate_id", ""),
            start=float(d["start"]),
            end=float(d["end"]),
            window=(float(d["window"][0]), float(d["window"][1])),
            expect_alert=bool(d["expect_alert"]),
            also=tuple(d.get("also") or ()),
            also_window=(float(aw[0]), float(aw[1])) if aw else None,
            details=dict(d.get("details") or {}),
        )


@dataclass(slots=True)
class Silence:
    t0: float  # the last reading sent before it
    t1: float  # the tracker is back
    kind: Literal["off", "jammed"]  # off: nothing recorded; jammed: fix-less readings kept and sent after


@dataclass(slots=True)
class TrackerSpec:
    """A crate's tracker: its identity, its trips and the plan its readings are generated from."""

    index: int
    tracker_id: str
    crate_id: str
    protocol: Literal["native", "owntracks"]
    interval_s: int
    phase_s: int  # grid offset: readings at start + phase + k * interval
    storage_every: int  # at rest in storage, only every n-th grid point is sent
    trips: list[TripSpec]
    timeline: Timeline
    sigma_m: float
    battery0: float
    drain_per_s: float
    battery_floor: float = 5.0
    seal_events: list[tuple[float, str]] = field(default_factory=list)  # (t, new state), sorted
    silences: list[Silence] = field(default_factory=list)
    dead_zones: list[tuple[float, float]] = field(default_factory=list)
    jumps: dict[float, tuple[float, float]] = field(default_factory=dict)  # grid ts -> (dx, dy) metres
    awake: list[tuple[float, float]] = field(default_factory=list)
    marks: dict[tuple[str, float], str] = field(default_factory=dict)  # ("seal"|"jump"|"battery", ts) -> truth id
    attacks: list[dict[str, Any]] = field(default_factory=list)  # simulators.attacks: kind, t0, t1, ...

    @property
    def owntracks_topic(self) -> str:
        user, device = self.tracker_id.split(".", 1)
        return f"owntracks/{user}/{device}"

    def battery(self, t: float, start: float) -> float:
        return max(self.battery_floor, self.battery0 - self.drain_per_s * (t - start))

    def grid_at_or_after(self, t: float, start: float) -> float:
        k = math.ceil((t - start - self.phase_s) / self.interval_s)
        return start + self.phase_s + max(0, k) * self.interval_s

    def grid_at_or_before(self, t: float, start: float) -> float:
        k = math.floor((t - start - self.phase_s) / self.interval_s)
        return start + self.phase_s + max(0, k) * self.interval_s


@dataclass
class Scenario:
    """Everything `build_scenario` planned. Iterate `messages()` to get what the trackers send."""

    seed: int
    start: float
    end: float
    config: SimConfig
    geography: Geography
    network: RoadNetwork
    trackers: list[TrackerSpec]
    trips: list[TripSpec]
    truth: list[TruthEvent]
    skipped: dict[str, int] = field(default_factory=dict)  # incident types that found no eligible trip
    handovers: list[HandoverSpec] = field(default_factory=list)  # the officers' signatures, by time

    @property
    def incidents(self) -> list[TruthEvent]:
        return [e for e in self.truth if e.expect_alert]

    @property
    def clean_trips(self) -> list[TripSpec]:
        return [t for t in self.trips if t.incident is None]

    def trip_bodies(self) -> list[tuple[str, dict[str, Any]]]:
        return [(t.trip_id, t.body()) for t in self.trips]

    def write_truth(self, path: str | Path) -> None:
        """Ground truth as JSONL: one event per line, incidents and benign events, by start time."""
        with open(path, "w", encoding="utf-8") as f:
            for e in sorted(self.truth, key=lambda e: (e.start, e.id)):
                f.write(json.dumps(e.to_json(), ensure_ascii=False) + "\n")

    def messages(self) -> Iterator[Message]:
        """Every MQTT message of the fleet in publish-time order (a heap over per-tracker streams)."""
        from simulators.streams import merge_streams

        return merge_streams(self)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for e in self.incidents:
            counts[e.type] = counts.get(e.type, 0) + 1
        return {
            "seed": self.seed,
            "trackers": len(self.trackers),
            "trips": len(self.trips),
            "clean_trips": len(self.clean_trips),
            "incidents": counts,
            "skipped": dict(self.skipped),
            "start": wib_iso(self.start),
            "end": wib_iso(self.end),
            "owntracks": sum(1 for t in self.trackers if t.protocol == "owntracks"),
        }


def wib_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=WIB).isoformat(timespec="seconds")


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _at_wib(day_of: float, hour: float) -> float:
    """The Unix time of `hour` (WIB) on the WIB calendar day containing `day_of`."""
    d = datetime.fromtimestamp(day_of, tz=WIB).replace(hour=0, minute=0, second=0, microsecond=0)
    return (d + timedelta(hours=hour)).timestamp()


def next_wib(after: float, hour: float) -> float:
    """The first `hour` o'clock WIB at or after `after`."""
    t = _at_wib(after, hour)
    return t if t >= after else t + 86400.0


def parse_start(start: float | datetime | str | None) -> float:
    if start is None:
        return float(datetime(2024, 11, 25, 5, 0, tzinfo=WIB).timestamp())
    if isinstance(start, datetime):
        if start.tzinfo is None:
            raise ValueError("start needs a time zone")
        return float(int(start.timestamp()))
    if isinstance(start, str):
        from kawal.timeutil import parse_time

        return float(int(parse_time(start)))
    return float(int(start))
