"""The reference agent end to end on real components: Debian's gpsd fed by gpsfake with the NMEA log of a
simulated Jombang trip -> `kawal agent` (its own process, provisioned by `kawal devices add`) -> a private
Mosquitto with password and ACL files -> `kawal serve`, which stores the track.

Along the drive the broker is stopped for 5 minutes of driving (gpsfake replays the log faster than real
time, and the agent counts its intervals on GPS time), the agent is killed with SIGKILL while offline and
started again, then the broker returns: every reading arrives, once, the backlog in batches."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kawal.cli import cli
from kawal.geodesy import great_circle_m as haversine_m
from simulators.nmea import Fix, jombang_trip, trip_fixes, write_nmea
from tests.servers import KawalServer, Mosquitto, free_port, http_get, wait_for

STEP_S = 5.0  # seconds of GPS time between epochs of the log
CYCLE_S = 0.005  # gpsfake's delay per sentence: 4 sentences per epoch -> about 250x real time
TRACKER, CRATE = "AGT-JBG-0001", "JBG-KS-0001"

pytestmark = pytest.mark.slow


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/test, which installs gpsd and gpsd-clients")
    return found


def _sql(path: Path, sql: str) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as c:
        try:
            return c.execute(sql).fetchall()
        except sqlite3.OperationalError:  # schema not there yet
            return []


@dataclass
class AgentProcess:
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kawal", "agent", "--config", str(self.config)], stdout=out, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Log:
    path: Path
    fixes: list[Fix]
    outage_from: float  # GPS time from which the broker is stopped: 7 minutes of driving follow it
    departure: float


def _outage_start(fixes: list[Fix]) -> float | None:
    """Where the broker goes down: a minute into a run of at least 7 minutes of uninterrupted driving that
    leaves 5 more minutes of log after the outage; None when the trip has no such run."""
    run_start: float | None = None
    for f in fixes:
        if f.speed_ms <= 1.0:
            run_start = None
            continue
        run_start = f.ts if run_start is None else run_start
        if f.ts - run_start >= 420 and fixes[-1].ts - (run_start + 60 + 300) >= 300:
            return run_start + 60
    return None


@pytest.fixture
def nmea_log(tmp_path: Path) -> Log:
    # The simulator's trips follow its road network and schedule model; take the first seed whose trip has
    # a long enough drive for the outage (the first one does, as the simulator stands).
    for seed in (3, 1, 4, 5, 2, 6, 7, 8):
        sc, trip = jombang_trip(seed)
        fixes = trip_fixes(sc, trip, step_s=STEP_S, before_s=900.0, after_s=60.0)
        outage = _outage_start(fixes)
        if outage is not None:
            return Log(write_nmea(tmp_path / "trip.nmea", fixes), fixes, outage, trip.departure)
    raise AssertionError("no simulated trip has 7 minutes of uninterrupted driving")


@dataclass
class GpsFake:
    """gpsfake (and the gpsd it runs) on a port; `pause` and `resume` hold the replay, as a drive goes on only
    while the test watches it."""

    workdir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int) -> None:
        binary = _binary("gpsfake")
        _binary("gpsd")
        env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
        # /usr/bin/python3 runs gpsfake with Debian's own gps package; keep the project's path out of it.
        env.pop("PYTHONPATH", None)
        with open(self.workdir / "gpsfake.log", "wb") as out:
            self.proc = subprocess.Popen(
                [binary, "-1", "-q", "-c", str(CYCLE_S), "-P", str(port), str(self.log)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)  # the feeder only: gpsd stays up

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # gpsfake holds on through SIGTERM while its gpsd winds down; neither has anything to save.
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def gpsfake(tmp_path: Path, nmea_log: Log) -> Iterator[GpsFake]:
    fake = GpsFake(tmp_path, nmea_log.path)
    yield fake
    fake.stop()


def _provision(tmp_path: Path, kawal_db: Path, broker_port: int) -> tuple[Path, str]:
    """`kawal devices add` for the tracker (writing the agent config) and Kawal's own account."""
    files = ["--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"), "--db", str(kawal_db)]
    conf = tmp_path / "agent.toml"
    r = CliRunner().invoke(
        cli,
        [
            "devices",
            "add",
            TRACKER,
            "--crate",
            CRATE,
            "--agent-config",
            str(conf),
            "--broker-url",
            f"mqtt://127.0.0.1:{broker_port}",
            *files,
        ],
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["devices", "add-service-account", "kawal", "--json", *files])
    assert r.exit_code == 0, r.output
    return conf, json.loads(r.output.splitlines()[0])["password"]


def test_gpsd_trip_through_broker_outage_and_sigkill(
    tmp_path: Path, nmea_log: Log, gpsfake: GpsFake, kawal_factory: Callable[..., KawalServer]
) -> None:
    broker_port, gpsd_port = free_port(), free_port()
    srv = kawal_factory(start=False)
    kawal_db = srv.workdir / "kawal.db"
    srv.workdir.mkdir(parents=True, exist_ok=True)
    conf, kawal_password = _provision(tmp_path, kawal_db, broker_port)
    broker = Mosquitto(
        tmp_path / "mosquitto",
        port=broker_port,
        extra_config=(f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\nacl_file {tmp_path / 'acl'}\n"),
    ).start()
    try:
        srv.env["KAWAL_MQTT_URL"] = f"mqtt://kawal:{kawal_password}@127.0.0.1:{broker_port}"
        srv.start()
        queue_db = tmp_path / "agent-queue.db"
        with open(conf, "a") as f:  # the board-specific keys, as a deployer adds them by hand
            f.write(f'gpsd_port = {gpsd_port}\nqueue_path = "{queue_db}"\nseal_pin = ""\ntamper_pin = ""\n')
        agent = AgentProcess(conf, tmp_path / "agent.log")
        agent.start()
        try:
            wait_for(lambda: "connected to 127.0.0.1" in agent.log.read_text(), timeout=30, what="agent online")
            gpsfake.start(gpsd_port)  # the receiver is switched on: the log plays from now
            _drive(broker, agent, gpsfake, kawal_db, queue_db, nmea_log.outage_from)
            _check_track(srv, kawal_db, queue_db, nmea_log.fixes, agent.log, nmea_log.departure)
            # Killed while connected: the broker publishes its Last Will, and Kawal records it.
            agent.kill()
            wait_for(
                lambda: _sql(kawal_db, f"SELECT status FROM trackers WHERE tracker_id = '{TRACKER}'") == [("offline",)],
                timeout=30,
                what="the Last Will",
            )
        finally:
            agent.stop()
    finally:
        broker.stop()


def _stored_max_ts(kawal_db: Path) -> float:
    rows = _sql(kawal_db, f"SELECT max(ts) FROM readings WHERE tracker_id = '{TRACKER}'")
    return float(rows[0][0]) if rows and rows[0][0] is not None else 0.0


def _queued(queue_db: Path) -> list[dict[str, Any]]:
    return [json.loads(b) for (b,) in _sql(queue_db, "SELECT body FROM readings ORDER BY id")]


def _drive(
    broker: Mosquitto, agent: AgentProcess, gps: GpsFake, kawal_db: Path, queue_db: Path, outage_from: float
) -> None:
    # Live: the first part of the drive arrives while the broker is up.
    wait_for(lambda: _stored_max_ts(kawal_db) >= outage_from, timeout=60, what="live readings of the drive")
    gps.pause()  # the drive waits while the broker goes down, however long that takes on a busy machine
    broker.stop()
    stopped_at = _stored_max_ts(kawal_db)
    gps.resume()
    # 5 minutes of driving while the broker is away: the readings queue up.
    wait_for(
        lambda: any(r["ts"] >= stopped_at + 300 for r in _queued(queue_db)),
        timeout=60,
        what="5 minutes of driving queued",
    )
    gps.pause()
    queued = _queued(queue_db)
    assert len(queued) >= 25, [(r["ts"], r.get("spd")) for r in queued]  # every 10 s of driving
    # Killed while offline, then started again: the queue survives, numbering goes on.
    connections = agent.log.read_text().count("connected to gpsd")
    agent.kill()
    agent.start()
    wait_for(lambda: agent.log.read_text().count("connected to gpsd") > connections, timeout=30, what="agent restarted")
    gps.resume()
    wait_for(lambda: len(_queued(queue_db)) > len(queued), timeout=60, what="queueing after the restart")
    broker.start()


def _check_track(
    srv: KawalServer, kawal_db: Path, queue_db: Path, fixes: list[Fix], agent_log: Path, departure: float
) -> None:
    # The log plays to its end; then everything the agent numbered is stored, each reading once.
    wait_for(
        lambda: (
            _sql(queue_db, "SELECT count(*) FROM readings") == [(0,)] and _stored_max_ts(kawal_db) >= fixes[-1].ts - 60
        ),
        timeout=90,
        what="the whole trip stored",
    )
    total = _sql(queue_db, "SELECT value FROM meta WHERE key = 'next_seq'")[0][0]
    seqs = [s for (s,) in _sql(kawal_db, f"SELECT seq FROM readings WHERE tracker_id = '{TRACKER}' ORDER BY seq")]
    assert seqs == list(range(total)), "a reading is missing or stored twice"
    log = agent_log.read_text()
    assert "sent a backlog batch of" in log, log[-3000:]

    status, body = http_get(f"{srv.base_url}/api/v1/crates/{CRATE}/track", headers=srv.headers)
    assert status == 200, body[:300]
    track = json.loads(body)["items"]
    by_ts = {f.ts: f for f in fixes}
    assert len(track) >= 0.8 * total  # a few readings (start-up, restart) carry no fix
    for point in track:
        ts = _unix(point["ts"])
        fix = by_ts[ts]  # every stored position is one of the log's epochs
        assert haversine_m(point["lat"], point["lon"], fix.lat, fix.lon) < 0.5
        assert haversine_m(point["lat"], point["lon"], fix.true_lat, fix.true_lon) < 6 * fix.sigma_m
        assert point["acc"] == pytest.approx(1.51 * fix.sigma_m, abs=0.2)
    moving = [p for p in track if (p.get("spd") or 0) >= 5]
    gaps = [(_unix(b["ts"]) - _unix(a["ts"])) for a, b in itertools.pairwise(moving)]
    # Positions every 10 s of GPS time while moving; the restarted agent sends its first fix at once.
    assert len(gaps) > 30 and sorted(gaps)[1] >= 10 - 1e-6
    assert math.isclose(sorted(gaps)[len(gaps) // 2], 10.0)
    # Standing in the warehouse before departure: every 60 s.
    standing = [p for p in track if _unix(p["ts"]) < departure and (p.get("spd") or 0) < 5]
    assert [_unix(b["ts"]) - _unix(a["ts"]) for a, b in itertools.pairwise(standing)] == [60.0] * (len(standing) - 1)
    assert len(standing) >= 3  # the receiver's first minutes may pass before gpsd has a client
    status_row = _sql(kawal_db, f"SELECT status FROM trackers WHERE tracker_id = '{TRACKER}'")
    assert status_row == [("online",)]


def _unix(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
