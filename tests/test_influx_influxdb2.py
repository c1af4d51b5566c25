"""The forwarder against a real InfluxDB 2 in a container (testcontainers). Skipped where no Docker runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.reading import Reading
from devices.registry import TrackerRegistry
from ingest.influx import InfluxForwarder
from ingest.readings import ReadingStore
from kawal.metrics import Metrics
from kawal.settings import Settings
from storage.sqlite import SqliteDatabase

pytestmark = pytest.mark.docker

TOKEN = "kawal-test-token"
ORG = "kawal"
BUCKET = "kawal"


def _docker_or_skip() -> None:
    try:
        import docker

        docker.from_env().ping()  # type: ignore[attr-defined]
    except Exception as e:
        pytest.skip(f"no Docker engine reachable ({type(e).__name__}): the InfluxDB 2 test needs one")


@pytest.fixture(scope="module")
def influxdb2() -> Iterator[Any]:
    _docker_or_skip()
    from testcontainers.community.influxdb.version2 import InfluxDb2Container

    c = InfluxDb2Container(
        image="influxdb:2.7",
        init_mode="setup",
        admin_token=TOKEN,
        username="kawal",
        password="kawal-password",
        org_name=ORG,
        bucket=BUCKET,
    )
    with c:
        yield c


def test_readings_reach_influxdb2_with_string_seal(influxdb2: Any, tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "kawal.db")
    t0 = time.time() - 3600
    TrackerRegistry(db).assign("TRK-1", "JBG-KS-0001")
    with db.write() as conn:
        ReadingStore(db).insert(
            conn,
            [
                Reading("TRK-1", t0 + i, -7.5, 112.2, i, seal="open" if i == 5 else "closed")
                for i in range(300)
            ],
            t0,
        )
    url = influxdb2.get_url()
    f = InfluxForwarder(
        db,
        Settings(
            influx_url=url, influx_token=TOKEN, influx_org=ORG, influx_bucket=BUCKET, influx_batch_size=100
        ),
        Metrics(),
    )
    f.start()
    try:
        deadline = time.monotonic() + 60
        while f.pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f.pending() == 0, f.last_error
        assert f.with_strings is True  # InfluxDB identifies itself: the string field is written
        client, _ = influxdb2.get_client(token=TOKEN, org_name=ORG)
        q = client.query_api()
        flux = (
            f'from(bucket:"{BUCKET}") |> range(start: -2d) |> filter(fn: (r) => r._measurement == '
            '"kawal_reading" and r._field == "lat") |> count()'
        )
        tables = q.query(flux, org=ORG)
        assert sum(rec.get_value() for t in tables for rec in t.records) == 300
        flux = (
            f'from(bucket:"{BUCKET}") |> range(start: -2d) |> filter(fn: (r) => r._field == "seal" and '
            'r._value == "open")'
        )
        recs = [rec for t in q.query(flux, org=ORG) for rec in t.records]
        assert len(recs) == 1 and recs[0].values["crate_id"] == "JBG-KS-0001"
        client.close()
    finally:
        f.stop()
