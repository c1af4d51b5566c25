"""Real servers for the tests: private Mosquitto and VictoriaMetrics instances, and Kawal itself.

Each is started on a free port in a temporary folder and stopped afterwards; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kawal.procs import free_port, stop_process, wait_listening


def wait_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    if not wait_listening(port, timeout, host=host):
        raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_for(cond: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `cond` every 0.1 s until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def http_get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@dataclass
class Mosquitto:
    """A private mosquitto broker. `extra_config` lines are appended to its listener config."""

    workdir: Path
    extra_config: str = ""
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self) -> Mosquitto:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.workdir.mkdir(parents=True, exist_ok=True)
        extra = self.extra_config
        if "allow_anonymous" not in extra:
            extra += "\nallow_anonymous true\n"
        if os.geteuid() == 0 and "\nuser " not in "\n" + extra:
            # As root, mosquitto drops to the `mosquitto` user, which cannot write to a private temp folder.
            extra += "user root\n"
        self.conf_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 1000\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
            "log_type error\nlog_type warning\n" + extra
        )
        self.proc = subprocess.Popen([binary, "-c", str(self.conf_path)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        stop_process(self.proc, 10)
        self.proc = None


@dataclass
class VictoriaMetrics:
    """A private VictoriaMetrics server; it takes the InfluxDB v2 write API at /api/v2/write."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetrics:
        binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, f"-storageDataPath={self.workdir}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-retentionPeriod=100y", "-search.disableCache", "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, 30)
        return self

    def stop(self) -> None:
        stop_process(self.proc, 20, signal.SIGINT)
        self.proc = None

    def flush(self) -> None:
        """Make recently written samples visible to queries."""
        http_get(f"{self.url}/internal/force_flush")

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, Any]]:
        """Every raw sample of the matching series, through the export API (one JSON line per series)."""
        self.flush()
        q = urllib.parse.urlencode({"match[]": match, "start": "0"})
        status, body = http_get(f"{self.url}/api/v1/export?{q}", timeout=60)
        assert status == 200, body[:500]
        return [json.loads(line) for line in body.splitlines() if line.strip()]


@dataclass
class KawalServer:
    """`kawal serve` in its own process, as an operator would run it."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    admin_token: str = "test-admin-token"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def log_path(self) -> Path:
        return self.workdir / "kawal.log"

    def start(self, wait: bool = True) -> KawalServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
        env.update(
            KAWAL_HTTP_PORT=str(self.port),
            KAWAL_DB=str(self.workdir / "kawal.db"),
            KAWAL_ADMIN_TOKEN=self.admin_token,
            KAWAL_EMBEDDED_MQTT_PORT="0",
        )
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen([sys.executable, "-m", "kawal", "serve"], env=env, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.workdir)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"kawal exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = http_get(f"{self.base_url}/healthz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"kawal not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self, kill: bool = False) -> None:
        stop_process(self.proc, 20, signal.SIGKILL if kill else signal.SIGTERM)
        self.proc = None

    def get(self, path: str, **params: Any) -> Any:
        q = ("?" + urllib.parse.urlencode(params, doseq=True)) if params else ""
        status, body = http_get(f"{self.base_url}{path}{q}", headers=self.headers)
        assert status == 200, (status, body[:500])
        return json.loads(body)


import urllib.parse  # noqa: E402  (used by the dataclasses above)
