"""`kawal demo` as a first-time viewer meets it: Kawal's point within two minutes (a seal break, a route
deviation, a crate gone silent, clean crates arriving), and the KAWAL_* variables honoured as by `serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kawal.demo import _recent_morning
from kawal.demo_plan import SHOWCASE, build_demo_scenario
from tests.servers import free_port, http_get
from tests.test_demo import Demo

DEFAULT_SPEEDUP = 60.0
FIRST_MINUTES = 2.0


def test_showcase_incidents_fall_in_the_first_two_minutes() -> None:
    sc = build_demo_scenario(7, 120, 0.1, _recent_morning(), 2)  # the demo's defaults
    shown_from = min(t.depart_after for t in sc.trips) - 60.0  # where the demo's fast-forward ends
    horizon = shown_from + FIRST_MINUTES * 60 * DEFAULT_SPEEDUP
    max_silence = sc.config.max_silence
    for type_ in SHOWCASE:
        events = [e for e in sc.truth if e.type == type_ and e.expect_alert]
        assert events, f"no {type_} in the demo"
        # When the alert can first be raised: a silence only after max_silence, the others at their start.
        due = min(e.start + (max_silence if type_ == "signal_lost" else 0.0) for e in events)
        assert due < horizon - 10 * 60, f"{type_} is due {(due - shown_from) / 60:.0f} simulated min in"
    clean = [t for t in sc.trips if t.incident is None and t.arrival is not None and shown_from < t.arrival < horizon]
    assert len(clean) >= 5, "clean crates should arrive during the first two minutes too"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.mark.slow
def test_demo_honours_kawal_variables_and_shows_its_point(tmp_path: Path) -> None:
    http_port, mqtt_port = free_port(), free_port()
    env = _env(KAWAL_HTTP_PORT=str(http_port), KAWAL_EMBEDDED_MQTT_PORT=str(mqtt_port))
    # Ten times the default speed: the same simulated two hours in twelve seconds (event clock).
    demo = Demo(["--speedup", str(DEFAULT_SPEEDUP * 10), "--duration", "240"], tmp_path, env=env)
    try:
        url = demo.wait_for(r"Dashboard:\s+(http://\S+)", 120).group(1)
        assert url == f"http://127.0.0.1:{http_port}/"
        assert demo.wait_for(r"MQTT broker:\s+mqtt://127\.0\.0\.1:(\d+)", 5).group(1) == str(mqtt_port)
        token = demo.wait_for(r"Admin token:\s+(\S+)", 5).group(1)
        shown_at = time.monotonic()
        auth = {"Authorization": f"Bearer {token}"}
        seen: set[str] = set()
        while time.monotonic() - shown_at < 90 and not set(SHOWCASE) <= seen:
            status, body = http_get(f"{url}api/v1/alerts?limit=500", headers=auth)
            assert status == 200
            seen = {a["type"] for a in json.loads(body)["items"]}
            time.sleep(1)
        assert set(SHOWCASE) <= seen, f"alerts seen: {sorted(seen)}\n{demo.output()}"
        status, body = http_get(f"{url}api/v1/config", headers=auth)
        assert status == 200 and json.loads(body)["clock"] == "event" and json.loads(body)["now"]
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(60) == 0, demo.output()
    finally:
        demo.kill()


def test_demo_port_from_a_variable_must_be_free(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "kawal", "demo", "--duration", "5"],
            cwd=tmp_path,
            env=_env(KAWAL_HTTP_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
