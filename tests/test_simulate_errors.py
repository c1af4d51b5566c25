"""`kawal simulate` warns when the service's clock and the simulation's disagree, and a Ctrl-C leaves every
tracker's retained status `offline`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from simulators.clockcheck import clock_warning
from tests.servers import KawalServer, Mosquitto, wait_for


def _simulate(args: list[str], cwd: Path, **kw: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "kawal", "simulate", "--no-progress", "--truth", str(cwd / "truth.jsonl"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_wall_clock_service_and_a_sped_up_simulation_warn(
    kawal_factory: Callable[..., KawalServer], tmp_path: Path
) -> None:
    srv = kawal_factory()  # KAWAL_CLOCK unset: the wall clock
    api = ["--api-url", srv.base_url, "--token", srv.admin_token, "--dry-run", "-n", "5"]
    fast = _simulate([*api, "--speedup", "60", "--prefix", "FAST"], tmp_path)
    _, err = fast.communicate(timeout=120)
    assert fast.returncode == 0, err
    assert "warning: the service runs on the wall clock (KAWAL_CLOCK=wall) but this simulation runs at 60x" in err
    # The same service and a real-time run starting now: nothing to warn about.
    config = {"clock": "wall", "now": srv.get("/api/v1/config")["now"]}
    assert clock_warning(config, time.time(), 1.0) is None


def test_event_clock_ahead_of_the_simulation_warns() -> None:
    config = {"clock": "event", "now": "2024-11-26T00:00:00Z"}
    assert "already at 2024-11-26T07:00:00+07:00" in (clock_warning(config, 1_732_500_000.0, 60) or "")
    assert clock_warning({"clock": "event", "now": None}, 1_732_500_000.0, 60) is None
    assert clock_warning(config, 1_732_600_000.0, 60) is None  # after the service's clock: fine


def _retained_statuses(broker: Mosquitto, expected: int = 4) -> dict[str, str]:
    """The retained statuses on the broker: mosquitto_sub returns once it has `expected` of them (or after 2 s)."""
    r = subprocess.run(
        [
            "mosquitto_sub",
            "-p",
            str(broker.port),
            "-t",
            "kawal/v1/+/status",
            "-v",
            "--retained-only",
            "-C",
            str(expected),
            "-W",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)


def test_ctrl_c_leaves_every_tracker_offline(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = _simulate(["--mqtt-url", mosquitto.url, "-n", "4", "--owntracks", "0", "--speedup", "1"], tmp_path)
    try:
        wait_for(lambda: len(_retained_statuses(mosquitto)) == 4, 60, "four retained online statuses")
        assert set(_retained_statuses(mosquitto).values()) == {"online"}
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "statuses are now offline" in err, err
    statuses = _retained_statuses(mosquitto)
    assert len(statuses) == 4 and set(statuses.values()) == {"offline"}, statuses
