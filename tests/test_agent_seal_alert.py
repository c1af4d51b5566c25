"""The seal end to end: the agent's mock seal contact opens, bouncing, on a crate in transit; the reading goes
through a real Mosquitto to `kawal serve`, which raises one `seal_break`, from one stored `open` reading."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kawal.trips import TRIP_IN_EXAMPLE
from tests.servers import KawalServer, Mosquitto, wait_for
from tests.test_agent_parts import bounce
from tests.test_agent_uplink import Running

TRACKER = "AGT-0001"


def _put_trip(srv: KawalServer, trip_id: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        f"{srv.base_url}/api/v1/trips/{trip_id}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={**srv.headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def _seal_readings(srv: KawalServer) -> list[str]:
    with contextlib.closing(sqlite3.connect(srv.workdir / "kawal.db", timeout=30)) as c:
        return [s for (s,) in c.execute("SELECT seal FROM readings WHERE tracker_id = ? ORDER BY ts", (TRACKER,))]


def _unix(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_bouncing_seal_contact_raises_one_seal_break(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer], tmp_path: Path
) -> None:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url})
    now = time.time()
    _put_trip(
        srv,
        "T-AGT-1",
        {
            **TRIP_IN_EXAMPLE,
            "tracker_id": TRACKER,
            "crate_id": "JBG-AGT-1",
            "depart_after": now - 3600,
            "arrive_by": now + 7200,
        },
    )
    run = Running(tmp_path, mosquitto.port, interval_s=3600.0, moving_interval_s=60.0)
    try:
        wait_for(lambda: _seal_readings(srv) == ["closed"], timeout=30, what="the sealed start-up reading")
        opened_at = time.time()
        bounce(run.factory.pin("GPIO17"), end_low=False)  # 50 ms of bouncing, ten edges, then open

        def alerts() -> list[dict[str, Any]]:
            return list(srv.get("/api/v1/alerts", tracker_id=TRACKER, type="seal_break")["items"])

        wait_for(lambda: len(alerts()) >= 1, timeout=15, what="the seal_break alert")
        time.sleep(1.0)  # anything more from the bouncing would have arrived by now
        found = alerts()
        assert len(found) == 1
        assert _seal_readings(srv) == ["closed", "open"]  # the bouncing was one reading
        alert = found[0]
        assert (alert["severity"], alert["trip_id"]) == ("critical", "T-AGT-1")
        # The alert's event time is the settled opening: the bounce plus the debounce, well within 1 s.
        assert 0 <= _unix(alert["ts"]) - opened_at < 1.0
        print(f"seal_break raised {_unix(alert['raised_at']) - opened_at:.3f} s after the contact opened")
    finally:
        run.stop()
