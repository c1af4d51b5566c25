"""`kawal demo` as a newcomer runs it: one command, a URL and a token, alerts within a minute, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.servers import free_port, http_get

ROOT = Path(__file__).resolve().parents[1]


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class Demo:
    """`python -m kawal demo ...` with its stdout collected line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        if env is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
            env["PYTHONUNBUFFERED"] = "1"
        self.stderr_path = cwd / "demo-stderr.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "kawal", "demo", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=self.stderr_path.open("wb"), text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} after {timeout}s; output:\n{self.output()}\n"
                             f"stderr:\n{self.stderr_path.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.parametrize("broker", ["auto", "amqtt"])
def test_demo_shows_alerts_within_a_minute_and_stops_cleanly(broker: str, tmp_path: Path) -> None:
    http_port = free_port()
    args = ["--http-port", str(http_port), "--broker", broker, "--duration", "300"]
    keep = broker == "amqtt"
    if keep:
        args += ["--dir", str(tmp_path / "demo-data")]
    demo = Demo(args, tmp_path)
    try:
        url = demo.wait_for(r"Dashboard:\s+(http://\S+)", 120).group(1)
        shown_at = time.monotonic()
        token = demo.wait_for(r"Admin token:\s+(\S+)", 5).group(1)
        mqtt_port = int(demo.wait_for(r"MQTT broker:\s+mqtt://127\.0\.0\.1:(\d+)", 5).group(1))
        folder = Path(demo.wait_for(r"Data folder:\s+(\S+)", 5).group(1))
        kind = demo.wait_for(r"\(embedded (\w+), MQTT", 5).group(1)
        assert url == f"http://127.0.0.1:{http_port}/"
        if broker == "amqtt":
            assert kind == "amqtt"
        assert len(token) >= 24

        status, body = http_get(url)
        assert status == 200 and b"<html" in body.lower()
        assert http_get(f"{url}api/v1/alerts")[0] == 401
        auth = {"Authorization": f"Bearer {token}"}
        status, body = http_get(f"{url}api/v1/trips", headers=auth)
        assert status == 200 and len(json.loads(body)["items"]) > 100

        # Alerts must be on the dashboard within the first minute.
        alerts: list[dict[str, object]] = []
        while time.monotonic() - shown_at < 60 and not alerts:
            status, body = http_get(f"{url}api/v1/alerts", headers=auth)
            assert status == 200
            alerts = json.loads(body)["items"]
            time.sleep(0.5)
        assert alerts, f"no alert within 60 s of the dashboard URL; output:\n{demo.output()}"
        assert all(a["tracker_id"] for a in alerts)

        below = descendants(demo.proc.pid)
        assert below, "the embedded broker should be a child process"
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(60) == 0, demo.output()
        assert "Stopped" in demo.output()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in below if alive(p)], f"left running: {[p for p in below if alive(p)]}"
        assert not port_open(http_port) and not port_open(mqtt_port)
        if keep:
            assert (folder / "kawal.db").exists()
        else:
            assert not folder.exists(), "the temporary data folder should be removed"
    finally:
        demo.kill()


def test_demo_duration_option_ends_it(tmp_path: Path) -> None:
    demo = Demo(["--http-port", str(free_port()), "--duration", "3", "--trackers", "10"], tmp_path)
    try:
        assert demo.proc.wait(120) == 0, demo.output()
        assert "--duration 3s reached." in demo.output()
        assert "Stopped" in demo.output()
    finally:
        demo.kill()
