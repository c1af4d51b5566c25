"""Does the service's clock agree with a simulation's? Asked before publishing, through GET /api/v1/config.

A service on the wall clock (KAWAL_CLOCK=wall) fed a simulated day in the past, or a sped-up one, measures
silences and deadlines against its own time: signal_lost and overdue then fire and resolve at every tick.
A service on the event clock that has already seen later readings judges the new ones as its past.
"""

from __future__ import annotations

from typing import Any

import httpx

from kawal.timeutil import parse_time
from simulators.model import wib_iso

TOLERANCE_S = 300.0  # a few minutes of skew between machines or of start-up does not matter


def service_clock(api_url: str, token: str, timeout: float = 10.0) -> dict[str, Any] | None:
    """The service's `/api/v1/config` ({"clock", "now", ...}), or None when it cannot be asked."""
    try:
        r = httpx.get(
            f"{api_url.rstrip('/')}/api/v1/config", headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def clock_warning(config: dict[str, Any], sim_start: float, speedup: float) -> str | None:
    """Why the service's clock and a simulation starting at `sim_start` at `speedup` disagree (None: they
    agree). `speedup` 0 means as fast as possible."""
    clock = config.get("clock")
    now = parse_time(config["now"]) if config.get("now") else None
    if clock == "wall":
        pace = "as fast as possible" if speedup == 0 else f"at {speedup:g}x"
        if speedup != 1.0:
            return (
                f"the service runs on the wall clock (KAWAL_CLOCK=wall) but this simulation runs {pace}: "
                "time-driven alerts (signal_lost, overdue, unscheduled_stop) will misfire. Run the service with "
                "KAWAL_CLOCK=event, or simulate with --speedup 1."
            )
        if now is not None and abs(sim_start - now) > TOLERANCE_S:
            return (
                f"the simulation starts at {wib_iso(sim_start)} but the service's wall clock says "
                f"{wib_iso(now)}: time-driven alerts will misfire. Run the service with KAWAL_CLOCK=event, "
                "or simulate with --start auto."
            )
    elif clock == "event" and now is not None and sim_start < now - TOLERANCE_S:
        return (
            f"the service's event clock is already at {wib_iso(now)}, after this simulation's start "
            f"{wib_iso(sim_start)}: its readings land in the service's past. Use a fresh database "
            "(or a later --start)."
        )
    return None
