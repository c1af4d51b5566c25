"""Readings never delivered, counted from `seq` (CONTRACT 1.1): gaps, late and reordered readings filling them,
duplicates not counted twice, reboots that reset seq, and the count kept across a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from devices.reading import Reading
from ingest.readings import ReadingStore
from ingest.seqgaps import SeqGaps
from kawal.metrics import Metrics
from storage import Database
from tests.api_harness import trip_body
from tests.faults import metric, publish, publisher, stop
from tests.servers import KawalServer, Mosquitto, wait_for

T = 1_732_060_800.0


def rd(seq: int, ts: float | None = None, tracker: str = "TRK-1") -> Reading:
    return Reading(tracker_id=tracker, ts=T + seq * 10.0 if ts is None else ts, lat=-7.55, lon=112.23, seq=seq)


class Rig:
    """SeqGaps fed the way the pipeline feeds it: only what the store took as new."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.store = ReadingStore(db)
        self.metrics = Metrics()
        self.gaps = SeqGaps(db, self.store, self.metrics)

    def ingest(self, *readings: Reading) -> None:
        with self.db.write() as c:
            new = self.store.insert(c, list(readings), time.time())
        self.gaps.observe(new)

    def total(self) -> float:
        return self.metrics.registry.get_sample_value("kawal_seq_missing_readings") or 0.0


def test_gaps_late_arrivals_and_duplicates(database: Database) -> None:
    rig = Rig(database)
    rig.ingest(rd(0), rd(1), rd(2), rd(5), rd(6))
    assert rig.gaps.missing("TRK-1") == 2
    rig.ingest(rd(4), rd(1))  # 4 arrives late; 1 again is a duplicate the store ignores
    assert rig.gaps.missing("TRK-1") == 1
    rig.ingest(rd(9), rd(8), rd(3))  # reordered within a batch
    assert rig.gaps.missing("TRK-1") == 1  # only 7 is missing
    rig.ingest(rd(0, tracker="TRK-2"), rd(3, tracker="TRK-2"))
    assert rig.gaps.missing("TRK-2") == 2 and rig.total() == 3
    assert rig.gaps.missing("TRK-NONE") is None


def test_reboot_resets_seq_without_counting_a_gap(database: Database) -> None:
    rig = Rig(database)
    rig.ingest(rd(100), rd(101), rd(103))  # 102 missing
    # The tracker reboots: seq starts at 0 again, later in time.
    rig.ingest(rd(0, ts=T + 2000), rd(1, ts=T + 2010), rd(2, ts=T + 2020))
    assert rig.gaps.missing("TRK-1") == 1
    rig.ingest(rd(4, ts=T + 2040))
    assert rig.gaps.missing("TRK-1") == 2
    # A reading from before the reboot arrives late: not counted against the new run.
    rig.ingest(rd(102))
    assert rig.gaps.missing("TRK-1") == 2


def test_count_survives_a_restart(database: Database) -> None:
    rig = Rig(database)
    rig.ingest(rd(0), rd(2))
    rig.gaps.save()
    rig.ingest(rd(5))  # stored after the save: replayed at the next start
    again = SeqGaps(database, rig.store, Metrics())
    assert again.restore() == 1
    assert again.missing("TRK-1") == 3
    row = database.conn().execute("SELECT seq_missing FROM trackers WHERE tracker_id = 'TRK-1'").fetchone()
    assert row[0] == 1  # what the crate views showed at the save


def test_crate_status_dashboard_data_and_metric(kawal_factory: Callable[..., KawalServer], tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        srv = kawal_factory(env={"KAWAL_MQTT_URL": broker.url})
        with httpx.Client(base_url=srv.base_url, headers=srv.headers, timeout=10) as client:
            now = time.time()
            trip = trip_body(tracker_id="TRK-G", crate_id="C-G", depart=now - 600, arrive=now + 7200)
            client.put("/api/v1/trips/T-G", json=trip).raise_for_status()
            pub = publisher(broker.port)
            publish(pub, "TRK-G", [0, 1, 2, 6, 7])  # 3, 4, 5 never delivered
            wait_for(lambda: client.get("/api/v1/crates/C-G").json().get("seq_missing") == 3, 30, "seq_missing 3")
            assert metric(srv, "kawal_seq_missing_readings") == 3
            listed = client.get("/api/v1/crates").json()["items"]
            assert [c["seq_missing"] for c in listed if c["crate_id"] == "C-G"] == [3]
            stop(pub)
    finally:
        broker.stop()
