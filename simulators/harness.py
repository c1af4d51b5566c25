"""A private Kawal for evaluations: `python -m kawal serve` in a temporary folder, on its own broker.

The broker is a private `mosquitto` when one is installed (queue limits raised so a fast simulation never
overflows Kawal's persistent session), otherwise Kawal's embedded default on a free port. The service runs
with `KAWAL_CLOCK=event`, so a simulated day replays in seconds with its time-driven checks intact.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

from kawal.procs import free_port, stop_process, wait_listening

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class ServiceError(RuntimeError):
    """The service or its broker did not start."""


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    if wait_listening(port, timeout, proc):
        return
    if proc is not None and proc.poll() is not None:
        raise ServiceError(f"process exited with {proc.returncode} before listening on {port}")
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    stop_process(proc, timeout)


class LocalKawal:
    """Start with `with LocalKawal(workdir) as k:`; then k.api_url, k.mqtt_url and k.token are set."""

    def __init__(
        self,
        workdir: Path,
        *,
        clock: Literal["event", "wall"] = "event",
        broker: Literal["auto", "mosquitto", "embedded"] = "auto",
        startup_timeout: float = 60.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.clock = clock
        self.broker = broker
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.token = secrets.token_urlsafe(24)
        self.http_port = free_port()
        self.mqtt_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.broker_proc: subprocess.Popen[bytes] | None = None
        self.broker_kind = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kawal.log"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def _start_mosquitto(self, binary: str) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.mqtt_port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # Kawal's persistent session must hold a whole fast-forwarded fleet while it catches up.
            "max_queued_messages 10000000\n"
            "max_inflight_messages 1000\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
            "log_type error\nlog_type warning\n"
        )
        self.broker_proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(self.mqtt_port, 15.0, self.broker_proc)
        self.broker_kind = "mosquitto (private)"

    def start(self) -> LocalKawal:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
        env.update(
            KAWAL_HTTP_HOST="127.0.0.1",
            KAWAL_HTTP_PORT=str(self.http_port),
            KAWAL_DB=str(self.workdir / "kawal.db"),
            KAWAL_ADMIN_TOKEN=self.token,
            KAWAL_CLOCK=self.clock,
            KAWAL_MQTT_CLIENT_ID=f"kawal-eval-{os.getpid()}",
        )
        binary = find_mosquitto()
        if self.broker == "mosquitto" and binary is None:
            raise ServiceError("--broker mosquitto asked for, but no mosquitto binary is installed")
        if binary is not None and self.broker in ("auto", "mosquitto"):
            self._start_mosquitto(binary)
            env["KAWAL_MQTT_URL"] = self.mqtt_url
        else:
            env["KAWAL_EMBEDDED_MQTT_PORT"] = str(self.mqtt_port)
            self.broker_kind = "Kawal's embedded default"
        env.update(self.extra_env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kawal", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"kawal serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ServiceError(f"kawal serve not healthy after {self.startup_timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None
        _stop(self.broker_proc)
        self.broker_proc = None

    def __enter__(self) -> LocalKawal:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
