"""The embedded broker off loopback: `kawal serve` refuses to run it without authentication, and with the
password and ACL files of `kawal devices add` it lets in only provisioned trackers, each on its own topics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kawal.broker import find_mosquitto
from tests.faults import publish, stop, stored
from tests.servers import KawalServer, free_port, wait_for

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto")


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
    env.update(
        KAWAL_DB=str(tmp_path / "kawal.db"),
        KAWAL_HTTP_PORT=str(free_port()),
        KAWAL_EMBEDDED_MQTT_HOST="0.0.0.0",
        KAWAL_EMBEDDED_MQTT_PORT=str(port),
        KAWAL_MOSQUITTO_PASSWORD_FILE=str(tmp_path / "auth" / "passwd"),
        KAWAL_MOSQUITTO_ACL_FILE=str(tmp_path / "auth" / "acl"),
    )
    return env


def connect(port: int, username: str | None = None, password: str | None = None) -> tuple[mqtt.Client, str]:
    """Connect and return the client with the broker's answer (CONNACK reason)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"auth-{username}", protocol=mqtt.MQTTv311)
    if username is not None:
        c.username_pw_set(username, password)
    answered = threading.Event()
    answer: list[str] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        answer.append(str(rc))
        answered.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert answered.wait(10), "no CONNACK"
    return c, answer[0]


def test_serve_off_loopback_without_passwords_refuses(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "kawal", "serve"],
        env=_env(tmp_path, free_port()),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0
    assert "refusing to run the embedded broker on 0.0.0.0 without authentication" in r.stderr, r.stderr
    assert "kawal devices add" in r.stderr and "Traceback" not in r.stderr


def test_serve_off_loopback_uses_the_files_of_kawal_devices(
    kawal_factory: Callable[..., KawalServer], tmp_path: Path
) -> None:
    port = free_port()
    env = _env(tmp_path, port)
    added = subprocess.run(
        [sys.executable, "-m", "kawal", "devices", "add", "TRK-AUTH1", "--json", "--create-dirs"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    creds = json.loads(added.stdout)
    srv = kawal_factory(env={k: v for k, v in env.items() if k.startswith("KAWAL_") and k != "KAWAL_HTTP_PORT"})
    db = Path(env["KAWAL_DB"])
    anonymous, answer = connect(port)
    assert answer == "Not authorized", answer
    stop(anonymous)
    tracker, answer = connect(port, creds["username"], creds["password"])
    assert answer == "Success", answer
    publish(tracker, "TRK-AUTH1", range(5))
    publish(tracker, "TRK-OTHER", range(3))  # the ACL lets it publish only below its own id: dropped
    publish(tracker, "TRK-AUTH1", range(5, 6))  # a marker after the refused ones
    wait_for(lambda: stored(db, "TRK-AUTH1") == 6, 30, "the provisioned tracker's readings stored")
    assert stored(db, "TRK-OTHER") == 0
    stop(tracker)
    assert srv.proc is not None and srv.proc.poll() is None
