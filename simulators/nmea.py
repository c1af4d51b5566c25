"""An NMEA 0183 log of a simulated Jombang trip, for `gpsfake` (gpsd's test harness) and the reference agent.

Each epoch is GGA (position), RMC (speed, course, date), GSA (fix mode, DOPs) and GST (per-axis error
σ), so gpsd reports a 3-D fix with its error estimates (`epx`, `epy`, `eph`) as a real receiver would.
Positions are the simulator's true path plus Gauss–Markov noise of the tracker's σ (as in
simulators.streams), so the log is a realistic drive: storage rest, departure, traffic stops, arrival.

    python -m simulators.nmea --out trip.nmea --seed 3 --step 1 --before 120
    gpsfake -1 -P 29470 trip.nmea
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from simulators.model import Scenario, SimConfig, TripSpec
from simulators.scenario import build_scenario

KNOTS_PER_MS = 3600.0 / 1852.0


@dataclass(frozen=True, slots=True)
class Fix:
    """One epoch of the log: what the receiver reports (noisy position) and the truth it came from."""

    ts: float  # Unix seconds, whole
    lat: float
    lon: float
    speed_ms: float
    course: float  # degrees, 0 when standing
    sigma_m: float  # per-axis 1-σ error, as in GST
    true_lat: float
    true_lon: float


def jombang_trip(seed: int = 3) -> tuple[Scenario, TripSpec]:
    """A one-crate, one-leg, incident-free distribution: the regency warehouse to its PPK."""
    sc = build_scenario(seed=seed, trackers=1, incidents_rate=0.0, config=SimConfig(legs=1, owntracks_share=0.0))
    return sc, sc.trips[0]


def trip_fixes(
    sc: Scenario, trip: TripSpec, step_s: float = 1.0, before_s: float = 120.0, after_s: float = 120.0, seed: int = 0
) -> list[Fix]:
    """Fixes every `step_s` from `before_s` ahead of departure until `after_s` past arrival."""
    spec = next(t for t in sc.trackers if t.tracker_id == trip.tracker_id)
    frame = sc.geography.frame
    rng = np.random.default_rng(seed)
    tau = sc.config.gps_tau_s
    t0 = math.floor(trip.departure - before_s)
    t1 = (trip.arrival or trip.arrive_by) + after_s
    z = rng.normal(0.0, 1.0, 2)
    out: list[Fix] = []
    t = float(t0)
    while t <= t1:
        st = spec.timeline.state(t)
        phi = math.exp(-step_s / tau)
        z = phi * z + math.sqrt(1.0 - phi * phi) * rng.normal(0.0, 1.0, 2)
        sigma = spec.sigma_m
        lat, lon = frame.to_latlon(st.x + sigma * float(z[0]), st.y + sigma * float(z[1]))
        true_lat, true_lon = frame.to_latlon(st.x, st.y)
        out.append(Fix(t, lat, lon, st.v, st.heading or 0.0, sigma, true_lat, true_lon))
        t += step_s
    return out


def _checksum(body: str) -> str:
    c = 0
    for ch in body:
        c ^= ord(ch)
    return f"${body}*{c:02X}"


def _angle(value: float, deg_digits: int) -> tuple[str, bool]:
    """Degrees -> NMEA (d)ddmm.mmmmm and whether it is positive."""
    a = abs(value)
    deg = int(a)
    minutes = (a - deg) * 60.0
    if round(minutes, 5) >= 60.0:  # 59.999996' would print as 60.00000
        deg, minutes = deg + 1, 0.0
    return f"{deg:0{deg_digits}d}{minutes:08.5f}", value >= 0


def sentences(fix: Fix) -> list[str]:
    """GGA, RMC, GSA and GST of one epoch."""
    when = datetime.fromtimestamp(fix.ts, UTC)
    hms = when.strftime("%H%M%S") + f".{round((fix.ts % 1) * 100):02d}"
    lat, north = _angle(fix.lat, 2)
    lon, east = _angle(fix.lon, 3)
    ns, ew = "N" if north else "S", "E" if east else "W"
    hdop = max(0.5, fix.sigma_m / 4.0)  # a UERE of ~4 m
    knots = fix.speed_ms * KNOTS_PER_MS
    return [
        _checksum(f"GPGGA,{hms},{lat},{ns},{lon},{ew},1,09,{hdop:.1f},45.0,M,12.0,M,,"),
        _checksum(f"GPRMC,{hms},A,{lat},{ns},{lon},{ew},{knots:.2f},{fix.course:.1f},{when:%d%m%y},,,A"),
        _checksum(f"GPGSA,A,3,02,05,07,09,13,15,18,20,30,,,,{hdop * 1.6:.1f},{hdop:.1f},{hdop * 1.3:.1f}"),
        _checksum(
            f"GPGST,{hms},{fix.sigma_m * 1.4:.1f},{fix.sigma_m:.1f},{fix.sigma_m:.1f},0.0,"
            f"{fix.sigma_m:.1f},{fix.sigma_m:.1f},{fix.sigma_m * 1.5:.1f}"
        ),
    ]


def write_nmea(path: str | Path, fixes: list[Fix]) -> Path:
    """Write the log, CRLF-terminated as a receiver sends it."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        f.write("# Kawal simulated Jombang trip (simulators/nmea.py)\r\n")
        for fix in fixes:
            for s in sentences(fix):
                f.write(s + "\r\n")
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--step", type=float, default=1.0, help="seconds between epochs")
    p.add_argument("--before", type=float, default=120.0, help="seconds at rest before departure")
    args = p.parse_args(argv)
    sc, trip = jombang_trip(args.seed)
    fixes = trip_fixes(sc, trip, args.step, args.before)
    write_nmea(args.out, fixes)
    print(f"{args.out}: {len(fixes)} epochs, trip {trip.trip_id} ({trip.tracker_id})")


if __name__ == "__main__":
    main()
