"""Every detection threshold that is not a per-trip setting, declared once with its default and source.

Per-trip thresholds (``corridor_m``, ``max_stop_min``, ``max_silence_min``) live on the trip itself, with
their defaults in ``kawal/trips.py``. docs/detection.md explains each rule and cites the same sources.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

ALERT_REOPEN_HOLD_OFF_S = 300.0
"""A condition the detectors resolved that returns within this long (on the detectors' clock: wall time, or the
latest reading time under KAWAL_CLOCK=event) reopens the same alert (history action ``reopen``) instead of raising
a new one: a flapping signal or a backlog uploaded in bursts makes one alert, not a storm. Five minutes, as
Prometheus Alertmanager's default ``resolve_timeout``."""


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    # ---- GPS filtering (the spirit of Traccar's filter.* keys, handler/FilterHandler.java) -----------
    max_acc_m: float = 100.0
    """A fix whose reported accuracy is worse than this is not used for movement (Traccar ``filter.accuracy``;
    GeoPulse's default maximum accuracy is also 100 m). Indoor and cold-start fixes land here."""

    default_acc_m: float = 10.0
    """Accuracy assumed when a tracker sends none: a consumer GNSS 68 % radius in open sky is 5-10 m
    (Newson & Krumm 2009 measured sigma = 4.07 m on a vehicle)."""

    max_speed_kmh: float = 150.0
    """A fix implying a faster move from the previous accepted fix is a gps_jump
    (Traccar ``filter.maxSpeed``). Crate lorries on Jombang's roads drive at 40-80 km/h; the
    Surabaya-Mojokerto toll road's limit is 100 km/h."""

    jump_acc_factor: float = 2.0
    """Before the speed test, the distance is reduced by this many times the two fixes' accuracies, so that
    noise between fixes seconds apart never looks like a jump."""

    jump_reanchor_count: int = 3
    """After this many consecutive rejected fixes that agree with each other, the old anchor was the bad fix:
    the new position is accepted (otherwise one bad first fix would reject every later one)."""

    gps_jump_quiet_s: float = 300.0
    """gps_jump resolves once this long has passed without another jump, at the next good fix or tick."""

    clock: Literal["event", "wall"] = "event"
    """What the service's ticks carry (KAWAL_CLOCK). ``event``: the clock is the latest reading time seen,
    so inside a batch it moves on with every message, and a tracker whose timer falls due before its
    readings arrive is checked at that moment first, exactly as if the batch had come message by message
    with a tick after each (the alerts do not depend on how the feed is split into batches). ``wall``:
    ticks carry wall time every second and readings never move the clock."""

    future_tolerance_s: float = 0.0
    """With ``clock="wall"`` and > 0, a reading more than this ahead of the latest tick's time is treated
    like a late one (Traccar ``filter.future``), so a tracker whose clock jumped ahead cannot make its own
    later readings look late; its seal is still read. 3600 is a sensible value. Not allowed with the event
    clock, where readings are the clock: a replay batch legitimately runs hours past the previous tick, and
    the filter would throw its readings away. The decoder already rejects readings more than 24 h ahead of
    the wall clock."""

    # ---- route deviation --------------------------------------------------------------------------
    corridor_acc_factor: float = 3.0
    """The corridor is max(corridor_m, k * acc): with acc a 68 % radius, 3 x acc keeps a fix on the route
    inside the corridor with > 99 % probability. The default corridor_m of 200 m is the GTFS-realtime
    validator's off-route distance (Mapbox's map-matching default radius is 50 m, made for clean phones)."""

    deviation_entry_count: int = 3
    """Consecutive fixes outside the corridor that enter the deviation state..."""

    deviation_entry_s: float = 60.0
    """...or at least two consecutive outside fixes spanning this long (sparse trackers). One bad fix never
    suffices."""

    deviation_exit_ratio: float = 0.8
    """Hysteresis: back inside means within this fraction of the corridor..."""

    deviation_exit_count: int = 2
    """...for this many consecutive fixes. Then route_deviation resolves."""

    crossing_sample_m: float = 50.0
    """Two consecutive outside fixes far apart are checked along the straight line between them, every
    this many metres: if that line passes through the corridor the crate crossed it, and the count
    restarts."""

    hint_window: int = 4
    """Segments examined each side of the tracker's last matched segment before a full nearest-segment
    search over the route."""

    route_search: Literal["hint", "numpy", "python"] = "hint"
    """How a fix is matched to the route: ``hint`` (last segment first, numpy full search as fallback),
    ``numpy`` (always a vectorised full search) or ``python`` (a plain loop, the pre-vectorisation baseline
    kept for benchmarks/detect.py)."""

    # ---- stops and arrival ------------------------------------------------------------------------
    stop_radius_m: float = 100.0
    """A stop is a run of fixes within this radius of their centroid (a 200 m diameter: between the
    100-200 m the issue asks for; Traccar needs ``report.trip.minimalTripDistance`` = 500 m of movement to
    end a parking, which is too lax for a sealed crate)."""

    stop_acc_factor: float = 2.0
    """A fix with poor accuracy widens the stop radius to max(stop_radius_m, k * acc)."""

    stop_exit_count: int = 2
    """A stop ends only after this many consecutive fixes outside its radius: one bad fix never breaks it."""

    stop_centroid_window: int = 10
    """The stop's centre is a running mean over about this many fixes (noise of a parked tracker averages
    out; a Gauss-Markov wander of tens of metres stays inside the radius)."""

    arrival_rest_s: float = 120.0
    """CONTRACT 2.2: a crate arrives when it stays inside the destination zone for 2 minutes."""

    zone_margin_m: float = 25.0
    """A fix counts as inside a zone (origin, destination, allowed stop, another trip's zone) up to this far
    beyond the zone's radius: about twice the sigma of a consumer GNSS fix near buildings."""

    # ---- storage (unexpected movement) -------------------------------------------------------------
    storage_margin_m: float = 50.0
    """Leaving the storage zone means a fix farther than radius + max(storage_margin_m, k * acc) from its
    centre: indoor fixes drift by tens of metres."""

    storage_acc_factor: float = 2.0
    """k in the storage margin above."""

    movement_confirm_count: int = 3
    """Consecutive outside fixes that confirm unexpected movement..."""

    movement_confirm_s: float = 60.0
    """...or two consecutive outside fixes spanning at least this long."""

    movement_exit_count: int = 2
    """unexpected_movement resolves after this many consecutive fixes back inside the zone."""

    # ---- battery ----------------------------------------------------------------------------------
    low_battery_pct: float = 15.0
    """CONTRACT 2.3: low_battery when the battery is below 15 %."""

    low_battery_clear_pct: float = 20.0
    """Hysteresis: low_battery resolves when the battery reads at least this much (a charged or replaced
    battery), so a reading wobbling around 15 % does not flap."""

    # ---- adversary: fix_lost, spoofing_suspected (issue 17) --------------------------------------------
    fix_lost_acc_m: float = 100.0
    """fix_lost: a fix whose accuracy is worse than this is no usable fix (the same bound as ``max_acc_m``:
    a jammed receiver's accuracy climbs to hundreds of metres). Together with no fix and Null Island, for
    longer than the trip's ``max_silence_min`` while readings keep coming."""

    reboot_seq_max: int = 32
    """A reboot restarts ``seq`` at a small number with a fresh ``ts``: an in-order reading whose seq falls
    back to at most this is a reboot, not a replay (trackers count from 0 or 1; a few readings may be lost
    while the modem reconnects)."""

    seq_jump_min: int = 10_000
    """A forward seq jump larger than this and than twice the elapsed seconds is evidence (no tracker
    records more than one reading every 2 s; CONTRACT 1.1: seq is +1 per reading)."""

    ts_regress_min_s: float = 300.0
    """A late reading whose seq is newer than any seen, but whose ts is this much older than the latest:
    the clock went back further than a time correction does (GNSS/NTP steps are seconds); a replay repeats
    old ts."""

    kin_min_kmh: float = 15.0
    """Speed/heading consistency is judged only between consecutive accepted fixes where the reported or the
    implied speed is at least this (at walking pace heading is noise) ..."""

    kin_max_dt_s: float = 120.0
    """... and at most this long apart (a longer gap says nothing about the speed in between)."""

    kin_tol_kmh: float = 25.0
    """A pair of fixes disagrees when the reported velocity (mean of the two readings' spd/hdg vectors) and
    the velocity implied by the movement differ by more than max(this, ``kin_tol_ratio`` x the larger):
    a consumer receiver's Doppler speed is good to ~0.5 km/h, so this is all about accelerating, braking and
    turning between fixes (a lorry stopping at a junction inside a 30 s interval)."""

    kin_tol_ratio: float = 0.5
    """See ``kin_tol_kmh``."""

    kin_window: int = 12
    """Speed/heading checks are counted over the last this many pairs (a halving window) ..."""

    kin_bad: int = 8
    """... and this many disagreeing pairs among them is evidence. Clean drives in the simulator and the
    tests disagree on at most 2 of 12 (traffic stops inside an interval)."""

    noise_rest_kmh: float = 2.0
    """Noise signature: only fixes at rest count (reported speed under this; without spd, moved less than
    ``noise_rest_m``), within ``noise_max_dt_s`` of the previous fix. At rest, a fix ..."""

    noise_rest_m: float = 15.0
    """See ``noise_rest_kmh``."""

    noise_max_dt_s: float = 600.0
    """See ``noise_rest_kmh`` (storage reports every 5 minutes)."""

    noise_clean_m: float = 0.5
    """... is "clean" when it moved less than this from the previous one. A consumer receiver's Gauss-Markov
    error (sigma 2-6.6 m, 60 s correlation; Newson & Krumm 2009 measured 4.07 m) moves a parked fix by a metre
    or more between fixes 10-60 s apart (clean in 1-10 % of them); a GPS simulator holding the lorry still
    repeats the position (100 %). Moving fixes are not used: fixes 10-60 s apart on a bending road differ by
    geometry far more than by noise."""

    noise_alpha: float = 0.15
    """The clean share of a trip's rest fixes is an exponential average with this weight ..."""

    noise_min_samples: int = 10
    """... judged after this many rest fixes in the trip ..."""

    noise_clean_share: float = 0.8
    """... too clean at or above this share ...."""

    noise_own_share: float = 0.3
    """... when the same tracker's own baseline (learned slowly over 20+ earlier rest fixes in any phase, kept
    across trips) is at most this. A receiver that holds its position at rest, or a track with no noise at all
    (the tests'), never showed real noise to be unlike; such tracks are not stored in the replay index either."""

    replay_cell_deg: float = 2e-5
    """Replay: accepted moving fixes are quantised to cells of this many degrees (about 2.2 m) ..."""

    replay_run: int = 5
    """... and a run of this many consecutive cells is hashed (time-shift invariant: positions only).
    Two honest drives on the same road differ by GPS noise (sigma 2-6 m) and by where along the road each
    fix fell (a 30 s interval at 40 km/h is 330 m): five fixes in the same 2 m cells in a row do not
    happen by chance, while a replay copies them exactly. (Six, with one run in four stored, missed a
    15-minute replay whose source had a dead zone and a stop: too few aligned runs were sampled.)"""

    replay_step_m: float = 20.0
    """Only a fix at least this far from the previous hashed one enters the run (a parked crate's fixes
    say nothing about its track)."""

    replay_sample: int = 2
    """One run in this many (chosen by its hash, so a replay samples the same runs) is stored in the
    index; every run is looked up."""

    replay_index_max: int = 300_000
    """Stored runs kept (oldest dropped first): about 130 B each, 40 MB at most; with the 1-in-2 sample,
    600,000 moving fixes of history (the day before of 10,000 crates on half-hour drives reporting every
    30 s). Raise it for a larger fleet or a longer memory."""

    replay_min_age_s: float = 1800.0
    """A match with the tracker's own track counts only when that run was stored at least this long ago
    (its own fixes of the last half hour are not a replay)."""

    # ---- spatial index of every trip's zones (wrong_destination) ------------------------------------
    zone_cell_deg: float = 0.02
    """Grid cell of the zone index, in degrees (about 2.2 km at Jombang's latitude)."""

    zone_big_radius_m: float = 5_000.0
    """Zones wider than this are kept in a short list checked one by one instead of filling grid cells."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int | float) and not isinstance(v, bool) and v < 0:
                raise ValueError(f"{f.name} must not be negative: {v}")
        if self.clock not in ("event", "wall"):
            raise ValueError(f"clock must be event or wall: {self.clock!r}")
        if self.future_tolerance_s > 0 and self.clock != "wall":
            raise ValueError("future_tolerance_s needs clock='wall': under the event clock readings are the clock")
        if self.route_search not in ("hint", "numpy", "python"):
            raise ValueError(f"route_search must be hint, numpy or python: {self.route_search!r}")
        if not 0 < self.deviation_exit_ratio <= 1:
            raise ValueError("deviation_exit_ratio must be in (0, 1]")
        if self.low_battery_clear_pct < self.low_battery_pct:
            raise ValueError("low_battery_clear_pct must be at least low_battery_pct")
        for name in (
            "deviation_entry_count",
            "deviation_exit_count",
            "stop_exit_count",
            "movement_confirm_count",
            "movement_exit_count",
            "jump_reanchor_count",
            "kin_window",
            "kin_bad",
            "noise_min_samples",
            "replay_run",
            "replay_sample",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.kin_bad > self.kin_window:
            raise ValueError("kin_bad must not exceed kin_window")
        if not 0 < self.noise_alpha <= 1:
            raise ValueError("noise_alpha must be in (0, 1]")
        if not 0 < self.noise_own_share < self.noise_clean_share <= 1:
            raise ValueError("need 0 < noise_own_share < noise_clean_share <= 1")
        if self.replay_cell_deg <= 0:
            raise ValueError("replay_cell_deg must be positive")
        if self.zone_cell_deg <= 0:
            raise ValueError("zone_cell_deg must be positive")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
