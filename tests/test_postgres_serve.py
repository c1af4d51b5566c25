"""`kawal serve` with KAWAL_DB=postgresql://...: a reading published to Mosquitto is stored in PostgreSQL,
its alert is raised there, and the API lists it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import psycopg

from tests.servers import KawalServer, Mosquitto, wait_for


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as c:
        row = c.execute(sql).fetchone()
        return int(row[0]) if row else 0


def test_serve_on_postgres_stores_raises_and_lists(
    postgres_url: str, mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer]
) -> None:
    srv = kawal_factory(env={"KAWAL_DB": postgres_url, "KAWAL_MQTT_URL": mosquitto.url})
    now = time.time()
    readings = [
        {"ts": now - 20, "seq": 1, "lat": -7.55, "lon": 112.23, "bat": 80, "seal": "closed"},
        {"ts": now - 10, "seq": 2, "lat": -7.55, "lon": 112.23, "bat": 80, "seal": "open"},
    ]
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", "1",
         "-t", "kawal/v1/TRK-PG1/telemetry", "-m", json.dumps(readings)],
        check=True, timeout=30,
    )
    wait_for(lambda: _count(postgres_url, "SELECT count(*) FROM readings WHERE tracker_id = 'TRK-PG1'") == 2,
             what="both readings stored in PostgreSQL")
    wait_for(lambda: _count(postgres_url, "SELECT count(*) FROM alerts WHERE type = 'seal_break'") == 1,
             what="the seal_break alert in PostgreSQL")
    alerts = srv.get("/api/v1/alerts", tracker_id="TRK-PG1")["items"]
    assert [(a["type"], a["status"], a["tracker_id"]) for a in alerts] == [("seal_break", "open", "TRK-PG1")]
    trackers = srv.get("/api/v1/trackers")
    assert "TRK-PG1" in json.dumps(trackers)
    # The same stream ids and audit chain as on SQLite: one event, one audit record for the raise.
    assert _count(postgres_url, "SELECT count(*) FROM alert_events") == 1
    assert _count(postgres_url, "SELECT count(*) FROM audit WHERE action = 'alert.raise'") == 1
    assert "Traceback" not in srv.log()
