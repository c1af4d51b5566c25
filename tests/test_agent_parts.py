"""The reference agent's parts on real components: the SQLite queue (also under SIGKILL), the seal contacts on
gpiozero's mock pins, gpsd's reports into fixes, and the config file that `kawal devices add` writes."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory

from devices.agent.battery import Battery
from devices.agent.config import AgentConfig, load_config
from devices.agent.gpsd import ACC_PER_SIGMA, FixAssembler, accuracy
from devices.agent.queue import ReadingQueue
from devices.agent.seal import SealSensor, SealState
from kawal.cli import cli
from simulators.nmea import Fix as NmeaFix
from simulators.nmea import sentences
from tests.servers import wait_for

# -- queue ------------------------------------------------------------------------------------------------


def test_queue_numbers_readings_and_keeps_them_across_reopen(tmp_path: Path) -> None:
    q = ReadingQueue(tmp_path / "q.db", max_size=100)
    bodies = [q.add({"ts": 1000.0 + i}) for i in range(5)]
    assert [b["seq"] for b in bodies] == [0, 1, 2, 3, 4]
    assert "dropped" not in bodies[0]
    rows = q.peek(0, 3)
    assert [json.loads(b)["seq"] for _, b in rows] == [0, 1, 2]
    q.remove(rows[0][0], rows[-1][0])
    q.close()
    q = ReadingQueue(tmp_path / "q.db", max_size=100)
    assert [json.loads(b)["seq"] for _, b in q.peek(0, 10)] == [3, 4]
    assert q.add({"ts": 2000.0})["seq"] == 5
    assert q.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert q.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_full_queue_drops_oldest_first_and_reports_the_count(tmp_path: Path) -> None:
    q = ReadingQueue(tmp_path / "q.db", max_size=10)
    for i in range(25):
        body = q.add({"ts": 1000.0 + i})
    assert q.size() == 10
    assert q.dropped == 15
    assert body["dropped"] == 15
    assert [json.loads(b)["seq"] for _, b in q.peek(0, 100)] == list(range(15, 25))


WRITER = """
import sys
from pathlib import Path
from devices.agent.queue import ReadingQueue
q = ReadingQueue(Path(sys.argv[1]), max_size=1_000_000)
print("ready", flush=True)
i = 0
while True:
    q.add({"ts": 1000.0 + i, "lat": -7.5, "lon": 112.2})
    i += 1
"""


def _next_seq(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as c:
        return int(c.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])


def test_sigkill_while_writing_loses_no_committed_reading(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    wait_for(lambda: _next_seq(path) > 200, what="readings written")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    q = ReadingQueue(path, 10**6)
    seqs = [json.loads(b)["seq"] for _, b in q.peek(0, 10**6)]
    # Every committed reading is there, numbered without a gap, and the counter goes on after them.
    assert seqs == list(range(len(seqs)))
    assert q.next_seq == len(seqs) > 200
    assert q.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- seal -------------------------------------------------------------------------------------------------


def bounce(pin: object, end_low: bool, duration: float = 0.05, edges: int = 10) -> None:
    """A contact that bounces for `duration` seconds, `edges` edges, then rests."""
    for i in range(edges):
        getattr(pin, "drive_low" if (i % 2 == 1) == end_low else "drive_high")()
        time.sleep(duration / edges)
    getattr(pin, "drive_low" if end_low else "drive_high")()


def make_seal(factory: MockFactory, events: list[SealState], tamper: bool = True) -> SealSensor:
    seal = SealSensor("GPIO17", "GPIO27" if tamper else None, events.append, debounce_s=0.1, pin_factory=factory)
    # A mock pin starts at its pull-up; the fitted contacts then pull them low: sealed, loop intact.
    factory.pin("GPIO17").drive_low()
    if tamper:
        factory.pin("GPIO27").drive_low()
    wait_for(lambda: seal.state == "closed", timeout=5, what="the sealed state")
    events.clear()
    return seal


def test_a_contact_bouncing_for_50ms_is_one_event() -> None:
    factory = MockFactory()
    events: list[SealState] = []
    seal = make_seal(factory, events)
    try:
        assert seal.state == "closed"
        bounce(factory.pin("GPIO17"), end_low=False)
        wait_for(lambda: len(events) >= 1, timeout=5, what="the opening")
        time.sleep(0.3)  # any further event would have come by now
        assert events == ["open"]
        bounce(factory.pin("GPIO17"), end_low=True)
        wait_for(lambda: len(events) >= 2, timeout=5, what="the closing")
        time.sleep(0.3)
        assert events == ["open", "closed"]
    finally:
        seal.close()


def test_a_bounce_that_comes_back_is_no_event_and_a_broken_loop_is_tampered() -> None:
    factory = MockFactory()
    events: list[SealState] = []
    seal = make_seal(factory, events)
    try:
        pin = factory.pin("GPIO17")
        for _ in range(5):  # a knock on the crate: the contact chatters and stays closed
            pin.drive_high()
            pin.drive_low()
        # Then a real event: it must be the first one, so the chatter made none (a positive marker rather than
        # a sleep followed by "nothing happened").
        bounce(factory.pin("GPIO27"), end_low=False)
        wait_for(lambda: len(events) >= 1, timeout=5, what="tampering")
        time.sleep(0.3)  # and nothing after it
        assert events == ["tampered"]
        assert seal.read() == "tampered"
    finally:
        seal.close()


# -- gpsd reports -----------------------------------------------------------------------------------------

TPV = {
    "class": "TPV",
    "mode": 3,
    "time": "2024-11-25T00:20:10.000Z",
    "lat": -7.5093,
    "lon": 112.2542,
    "speed": 10.0,
    "track": 288.6,
    "eph": 30.4,
}


def test_tpv_waits_for_its_gst_and_takes_acc_from_it() -> None:
    asm = FixAssembler()
    assert asm.feed(TPV) == []
    fixes = asm.feed({"class": "GST", "time": TPV["time"], "lat": 6.3, "lon": 6.3})
    assert len(fixes) == 1
    fix = fixes[0]
    assert fix.ts == 1732494010.0
    assert (fix.lat, fix.lon, fix.spd, fix.hdg) == (-7.5093, 112.2542, 36.0, 288.6)
    assert fix.acc == round(ACC_PER_SIGMA * 6.3, 1) == 9.5


def test_acc_without_gst_and_fixes_without_position() -> None:
    assert accuracy({"epx": 9.8, "epy": 9.8}, None) == round(ACC_PER_SIGMA * 5.0, 1)
    assert accuracy({"eph": 24.48}, None) == round(ACC_PER_SIGMA * 24.48 / math.sqrt(-2 * math.log(0.05)), 1)
    assert accuracy({}, None) is None
    asm = FixAssembler()
    asm.feed({**TPV, "mode": 1})
    assert asm.flush() == []  # no fix
    asm.feed({k: v for k, v in TPV.items() if k != "lat"})
    assert asm.flush() == []
    asm.feed(TPV)  # the next cycle's TPV releases this one, with no GST of its own time
    fixes = asm.feed({**TPV, "time": "2024-11-25T00:20:11.000Z"})
    assert len(fixes) == 1 and fixes[0].acc == accuracy(TPV, None)


# -- config -----------------------------------------------------------------------------------------------


def test_devices_add_writes_the_agent_config(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    conf = tmp_path / "etc" / "agent.toml"
    files = [
        "--password-file",
        str(tmp_path / "passwd"),
        "--acl-file",
        str(tmp_path / "acl"),
        "--db",
        str(tmp_path / "kawal.db"),
    ]
    result = CliRunner().invoke(
        cli,
        [
            "devices",
            "add",
            "AGT-1",
            "--crate",
            "JBG-1",
            "--json",
            "--agent-config",
            str(conf),
            "--broker-url",
            "mqtts://broker.example:8883",
            "--ca",
            str(ca),
            *files,
        ],
    )
    assert result.exit_code == 0, result.output
    creds = json.loads(result.output.splitlines()[0])
    assert creds["agent_config"] == str(conf)
    cfg = load_config(conf)
    assert (cfg.tracker_id, cfg.username, cfg.password) == ("AGT-1", "AGT-1", creds["password"])
    assert (cfg.tls, cfg.host, cfg.port, cfg.ca_file) == (True, "broker.example", 8883, ca.resolve())
    assert conf.stat().st_mode & 0o077 == 0

    as_json = tmp_path / "agent.json"
    result = CliRunner().invoke(
        cli,
        [
            "devices",
            "add",
            "AGT-1",
            "--rotate",
            "--agent-config",
            str(as_json),
            "--broker-url",
            "mqtt://broker.example",
            *files,
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_config(as_json).port == 1883
    assert load_config(as_json).password != cfg.password

    bad = CliRunner().invoke(
        cli,
        ["devices", "add", "AGT-2", "--agent-config", str(tmp_path / "x.toml"), "--broker-url", "http://nope", *files],
    )
    assert bad.exit_code != 0 and "broker_url" in bad.output
    assert "AGT-2" not in (tmp_path / "passwd").read_text()  # nothing issued for a bad request


def test_config_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AgentConfig.model_validate({"tracker_id": "bad id", "broker_url": "mqtt://h"})
    with pytest.raises(ValueError):
        AgentConfig.model_validate({"tracker_id": "A", "broker_url": "mqtt://h", "moving_interval_s": 120})
    with pytest.raises(ValueError):
        AgentConfig.model_validate({"tracker_id": "A", "broker_url": "mqtt://h", "batch_max": 1001})
    p = tmp_path / "a.toml"
    p.write_text('tracker_id = "A"\nbroker_url = "mqtt://h:1884"\nunknown = 1\n')
    with pytest.raises(ValueError):
        load_config(p)
    result = CliRunner().invoke(cli, ["agent", "--config", str(p)])
    assert result.exit_code != 0 and "unknown" in result.output


def test_battery_from_a_sysfs_style_file(tmp_path: Path) -> None:
    capacity = tmp_path / "capacity"
    capacity.write_text("87\n")
    assert Battery(capacity).percent() == 87.0
    capacity.write_text("104\n")  # some gauges overshoot when charging
    assert Battery(capacity).percent() == 100.0
    capacity.write_text("garbage\n")
    assert Battery(capacity).percent() is None
    assert Battery(tmp_path / "absent").percent() is None
    assert Battery(None).percent() is None


@pytest.mark.skipif(
    Path("/proc/device-tree/model").exists() or "GPIOZERO_PIN_FACTORY" in os.environ, reason="GPIO pins available"
)
@pytest.mark.filterwarnings("ignore::gpiozero.exc.PinFactoryFallback")  # the fallbacks it tries first
def test_agent_without_gpio_says_how_to_run_without_a_seal(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text(f'tracker_id = "A"\nbroker_url = "mqtt://127.0.0.1:1"\nqueue_path = "{tmp_path / "q.db"}"\n')
    result = CliRunner().invoke(cli, ["agent", "--config", str(p)])
    assert result.exit_code == 1
    assert 'seal_pin = ""' in result.output


def test_nmea_log_sentences_carry_the_fix() -> None:
    fix = NmeaFix(
        ts=1732494010.0,
        lat=-7.5093219,
        lon=112.2542595,
        speed_ms=10.0,
        course=288.6,
        sigma_m=6.3,
        true_lat=-7.5093,
        true_lon=112.2542,
    )
    gga, rmc, gsa, gst = sentences(fix)
    for s in (gga, rmc, gsa, gst):
        body, checksum = s[1:].split("*")
        assert int(checksum, 16) == functools.reduce(lambda a, c: a ^ ord(c), body, 0)
    f = gga.split(",")
    assert f[1] == "002010.00" and (f[3], f[5]) == ("S", "E")
    lat = -(int(f[2][:2]) + float(f[2][2:]) / 60)
    lon = int(f[4][:3]) + float(f[4][3:]) / 60
    assert abs(lat - fix.lat) < 2e-7 and abs(lon - fix.lon) < 2e-7  # 5 decimals of minutes: 2 cm
    r = rmc.split(",")
    assert float(r[7]) == pytest.approx(10.0 * 3600 / 1852, abs=0.01) and r[9] == "251124"
    assert gst.split(",")[6:8] == ["6.3", "6.3"]  # σ of latitude and longitude, metres
