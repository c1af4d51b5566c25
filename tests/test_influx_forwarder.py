"""The InfluxDB forwarder with SQLite as its outbox, against a real VictoriaMetrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.reading import Reading
from devices.registry import TrackerRegistry
from ingest.influx import InfluxForwarder, line
from ingest.readings import ReadingStore
from kawal.metrics import Metrics
from kawal.settings import Settings
from storage.sqlite import SqliteDatabase
from tests.servers import VictoriaMetrics, free_port, wait_for

T = time.time() - 3600.0


def store(db: SqliteDatabase, readings: list[Reading]) -> None:
    with db.write() as conn:
        TrackerRegistry(db).ensure(conn, {r.tracker_id for r in readings}, T)
        ReadingStore(db).insert(conn, readings, T)


@pytest.fixture
def db(tmp_path: Path) -> SqliteDatabase:
    return SqliteDatabase(tmp_path / "kawal.db")


@pytest.fixture
def forwarders() -> Iterator[list[InfluxForwarder]]:
    made: list[InfluxForwarder] = []
    yield made
    for f in made:
        f.stop()


def start(db: SqliteDatabase, url: str, made: list[InfluxForwarder], batch: int = 5000) -> InfluxForwarder:
    f = InfluxForwarder(db, Settings(influx_url=url, influx_batch_size=batch), Metrics())
    f.start()
    made.append(f)
    return f


def test_line_protocol() -> None:
    row = (7, "TRK-1", "JBG KS,1", 1732060800.1234, 5, -7.5, 112.25, 4.0, 31.5, 90.0, 55.5, "tampered")
    assert line(row, with_strings=True) == (
        "kawal_reading,tracker_id=TRK-1,crate_id=JBG\\ KS\\,1 lat=-7.5,lon=112.25,acc=4.0,spd=31.5,hdg=90.0,"
        'bat=55.5,seq=5i,seal_code=2i,seal="tampered" 1732060800123'
    )
    no_strings = line(row, with_strings=False)
    assert no_strings is not None and "seal=" not in no_strings and "seal_code=2i" in no_strings
    bare = (8, "TRK-1", None, 1732060800.0, -1, None, None, None, None, None, None, None)
    assert line(bare, with_strings=True) is None  # no field to write
    seal_only = (9, "TRK-1", None, 1732060800.0, -1, None, None, None, None, None, None, "closed")
    assert line(seal_only, with_strings=False) == "kawal_reading,tracker_id=TRK-1 seal_code=0i 1732060800000"


def test_forwards_with_crate_tag_and_resumes_from_its_mark(
    db: SqliteDatabase, victoria: VictoriaMetrics, forwarders: list[InfluxForwarder]
) -> None:
    TrackerRegistry(db).assign("TRK-1", "JBG-KS-0001")
    store(
        db,
        [Reading("TRK-1", T + i, -7.5, 112.2, i, seal="closed") for i in range(120)]
        + [Reading("TRK-2", T + i, -7.6, 112.3, i) for i in range(80)],
    )
    f = start(db, victoria.url, forwarders, batch=50)  # several batches
    wait_for(lambda: f.pending() == 0, what="first drain")
    assert f.mark() == 200
    f.stop()
    store(db, [Reading("TRK-2", T + 1000 + i, -7.6, 112.3, 1000 + i) for i in range(30)])
    f2 = start(db, victoria.url, forwarders)
    wait_for(lambda: f2.pending() == 0, what="second drain")
    series = {s["metric"]["tracker_id"]: s for s in victoria.export('{__name__="kawal_reading_lat"}')}
    assert series["TRK-1"]["metric"]["crate_id"] == "JBG-KS-0001"
    assert "crate_id" not in series["TRK-2"]["metric"]
    assert len(series["TRK-1"]["timestamps"]) == 120
    assert len(series["TRK-2"]["timestamps"]) == 110  # nothing sent twice after the restart
    seal = victoria.export('{__name__="kawal_reading_seal_code"}')
    assert [set(s["values"]) for s in seal] == [{0}]


def test_server_down_at_start_then_up_drains_the_backlog(
    db: SqliteDatabase, tmp_path: Path, forwarders: list[InfluxForwarder]
) -> None:
    vm = VictoriaMetrics(tmp_path / "vm", port=free_port())
    store(db, [Reading(f"TRK-{i % 5}", T + i, -7.5, 112.2, i) for i in range(500)])
    f = start(db, vm.url, forwarders, batch=100)
    wait_for(
        lambda: (f.metrics.registry.get_sample_value("kawal_influx_write_errors_total") or 0) >= 1,
        what="a failed attempt",
    )
    assert f.pending() == 500 and f.last_error
    vm.start()
    try:
        wait_for(lambda: f.pending() == 0, what="the backlog to drain")
        got = sum(len(s["timestamps"]) for s in vm.export('{__name__="kawal_reading_lat"}'))
        assert got == 500
        assert f.metrics.registry.get_sample_value("kawal_influx_written_readings_total") == 500
    finally:
        f.stop()
        vm.stop()


def test_needs_a_url(db: SqliteDatabase) -> None:
    with pytest.raises(ValueError):
        InfluxForwarder(db, Settings(influx_url=None), Metrics())
