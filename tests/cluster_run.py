"""Running one labelled simulated fleet through Kawal, for the cluster tests: the same scenario through one
process and through a cluster must give the same stored track and the same alerts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from simulators.model import Scenario
from simulators.publish import Publisher
from simulators.register import register_trips
from simulators.scenario import SimConfig, build_scenario
from simulators.streams import Message
from storage import Database
from tests.api_harness import sse_events

TOKEN = "cluster-test-token"
# Stops, silence, lateness, a seal and a detour: the time-driven alerts are the ones a failover can break.
CONFIG = SimConfig(
    prefix="CL",
    incident_weights={"unscheduled_stop": 3, "signal_lost": 1, "overdue": 1, "seal_break": 1, "route_deviation": 1},
)
STOP_TRACKER = "CL-TRK00008"  # its unscheduled stop begins at STOP_START (seed 3)

AlertKey = tuple[str, str, float, str]


def fleet() -> Scenario:
    return build_scenario(seed=3, trackers=8, incidents_rate=0.75, config=CONFIG)


def stop_start(scenario: Scenario) -> float:
    return next(t.start for t in scenario.truth if t.type == "unscheduled_stop" and t.tracker_id == STOP_TRACKER)


def publish(
    api_url: str,
    mqtt_url: str,
    scenario: Scenario,
    max_rate: float | None = None,
    on_publish: Callable[[Message, float], None] | None = None,
) -> int:
    """Register the trips, publish every message; returns the number of distinct readings published."""
    register_trips(api_url, TOKEN, scenario.trip_bodies())
    pub = Publisher(mqtt_url, speedup=0, progress=False, max_rate=max_rate, client_prefix="kawal-cl-sim")
    stats = pub.publish_scenario(scenario, on_publish=on_publish)
    return int(stats.unique_readings)


def publish_split(api_url: str, mqtt_url: str, scenario: Scenario, split_at: float, between: Callable[[], None]) -> int:
    """`publish`, in two parts: the messages before event time `split_at`, then `between()`, then the rest."""
    register_trips(api_url, TOKEN, scenario.trip_bodies())
    messages = list(scenario.messages())
    first = [m for m in messages if m.at < split_at]
    rest = messages[len(first) :]
    unique = 0
    for part in (first, rest):
        pub = Publisher(mqtt_url, speedup=0, progress=False, client_prefix="kawal-cl-sim")
        unique += int(pub.run(part, scenario.start, scenario.end).unique_readings)
        if part is first:
            between()
    return unique


def alert_keys(db: Database) -> list[AlertKey]:
    rows = db.conn().execute("SELECT tracker_id, type, ts, status FROM alerts ORDER BY tracker_id, type, ts, status")
    return [(str(r[0]), str(r[1]), round(float(r[2]), 3), str(r[3])) for r in rows]


def readings(db: Database) -> tuple[int, int]:
    """(rows, distinct (tracker, ts, seq)): equal when nothing is stored twice."""
    row = (
        db.conn()
        .execute(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT tracker_id, ts, seq FROM readings) d)"
            " FROM readings"
        )
        .fetchone()
    )
    return int(row[0]), int(row[1])


def settle(db: Database, expected: int, timeout: float = 90.0, quiet_s: float = 5.0) -> list[AlertKey]:
    """Wait until every reading is stored and the alerts stopped changing; returns the alerts."""
    deadline = time.monotonic() + timeout
    last: Any = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        keys = alert_keys(db)
        state = (readings(db)[0], keys)
        if state != last:
            last, since = state, time.monotonic()
        elif state[0] >= expected and time.monotonic() - since >= quiet_s:
            return keys
        time.sleep(0.25)
    raise AssertionError(f"not settled in {timeout}s: {readings(db)} of {expected} readings stored")


class StreamWatcher:
    """Reads one worker's live alert stream in a thread: the event ids it carried and when they arrived."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/api/v1/alerts/stream"
        self.arrived: dict[int, float] = {}
        self.connected = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self.url, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                self.connected.set()
                for ev in sse_events(r):
                    if ev.id is not None and ev.data:
                        self.arrived.setdefault(int(ev.id), time.time())
        except (httpx.HTTPError, RuntimeError):
            return  # closed

    def close(self) -> None:
        self._client.close()


def event_ids(db: Database) -> dict[int, float]:
    """Every alert change of the cluster: event id -> when it was committed (wall time)."""
    return {int(r[0]): float(r[1]) for r in db.conn().execute("SELECT event_id, at FROM alert_events")}
