"""`kawal serve` explains what is wrong: a port in use in one line before anything starts, a broker that is
not there at once in the log and in /healthz, while it keeps retrying."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.servers import KawalServer, Mosquitto, free_port, http_get, wait_for


def test_port_in_use_is_one_line_and_nothing_else_starts(tmp_path: Path) -> None:
    # Something holds the HTTP port; a TCP listener stands in for the broker and records any connection.
    with socket.socket() as taken, socket.socket() as fake_broker:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        fake_broker.bind(("127.0.0.1", 0))
        fake_broker.listen(1)
        fake_broker.settimeout(0.5)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
        env.update(
            KAWAL_HTTP_PORT=str(port),
            KAWAL_MQTT_URL=f"mqtt://127.0.0.1:{fake_broker.getsockname()[1]}",
            KAWAL_DB=str(tmp_path / "kawal.db"),
        )
        r = subprocess.run(
            [sys.executable, "-m", "kawal", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert r.returncode != 0
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines == [f"Error: port {port} on 127.0.0.1 is in use (KAWAL_HTTP_PORT / --http-port)"], r.stderr
        try:
            conn, _ = fake_broker.accept()
            conn.close()
            contacted = True
        except TimeoutError:
            contacted = False
        assert not contacted, "kawal serve connected to the broker although its port was taken"
    assert not (tmp_path / "kawal.db").exists()


def _health(srv: KawalServer) -> tuple[int, dict[str, str]]:
    try:
        status, body = http_get(f"{srv.base_url}/healthz", timeout=2)
    except OSError:
        return 0, {}
    return status, json.loads(body)


def test_absent_broker_is_named_at_once_and_retried(kawal_factory: Callable[..., KawalServer], tmp_path: Path) -> None:
    broker_port = free_port()
    srv = kawal_factory(env={"KAWAL_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}"}, start=False)
    srv.start(wait=False)
    expected = f"connection refused to 127.0.0.1:{broker_port}, retrying"
    wait_for(lambda: _health(srv)[0] == 503, 30, "/healthz to answer 503")
    wait_for(lambda: _health(srv)[1].get("reason") == expected, 10, f"/healthz reason {expected!r}")
    assert expected in srv.log()
    assert "Traceback" not in srv.log()
    # The broker comes up on that port: the consumer's retries find it and the service becomes healthy.
    broker = Mosquitto(tmp_path / "late-broker", port=broker_port).start()
    try:
        srv.wait_healthy(timeout=60)
        assert _health(srv) == (200, {"status": "ok"})
    finally:
        srv.stop()
        broker.stop()


def test_invalid_settings_are_named_by_variable_not_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
    env.update(KAWAL_MQTT_PROCESS="maybe", KAWAL_HTTP_PORT="abc", KAWAL_DB=str(tmp_path / "kawal.db"))
    r = subprocess.run(
        [sys.executable, "-m", "kawal", "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "KAWAL_MQTT_PROCESS='maybe': Input should be a valid boolean" in r.stderr, r.stderr
    assert "KAWAL_HTTP_PORT='abc': Input should be a valid integer" in r.stderr, r.stderr
    assert not (tmp_path / "kawal.db").exists()
