"""A whole cluster on one machine (CONTRACT 3.1 `kawal cluster`): a tracker broker, the engine, N workers.

Each worker is `kawal serve` in its own process, with its own KAWAL_WORKER_ID and HTTP port, on the shared
PostgreSQL database and the engine. A broker or engine not given is started privately (mosquitto and
nats-server on free ports, their state in the working folder). Used by `kawal cluster`, the tests and
benchmarks/cluster.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.natsd import PrivateNats
from kawal.procs import free_port, stop_process, wait_listening
from simulators.harness import find_mosquitto


class ClusterError(RuntimeError):
    pass


@dataclass
class Worker:
    worker_id: str
    http_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@dataclass
class LocalCluster:
    workdir: Path
    db: str
    workers: int = 2
    mqtt_url: str | None = None
    cluster_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra KAWAL_* settings for every worker
    startup_timeout: float = 60.0
    nats: PrivateNats | None = None
    members: list[Worker] = field(default_factory=list)
    _mosquitto: subprocess.Popen[bytes] | None = None

    # ---- the servers in front -----------------------------------------------------------------------

    def _start_mosquitto(self) -> str:
        binary = find_mosquitto()
        if binary is None:
            raise ClusterError("no broker given (--mqtt-url) and mosquitto is not installed")
        port = free_port()
        folder = self.workdir / "mosquitto"
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "mosquitto.conf"
        extra = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {folder}/\n"
            "max_queued_messages 10000000\nmax_inflight_messages 1000\n"
            f"log_dest file {folder}/mosquitto.log\nlog_type error\nlog_type warning\n{extra}"
        )
        self._mosquitto = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(port, 15.0)
        return f"mqtt://127.0.0.1:{port}"

    def start(self) -> LocalCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self.mqtt_url is None:
                self.mqtt_url = self._start_mosquitto()
            if self.cluster_url is None:
                self.nats = PrivateNats(self.workdir / "nats").start()
                self.cluster_url = self.nats.url
            elif "KAWAL_CLUSTER_STREAM" not in self.env and "KAWAL_CLUSTER_STREAM" not in os.environ:
                # A shared engine: a stream of this database's own, so two clusters never read each other's.
                name = urllib.parse.urlsplit(self.db).path.strip("/") or "kawal"
                self.env["KAWAL_CLUSTER_STREAM"] = "KAWAL_" + "".join(c if c.isalnum() else "_" for c in name).upper()
            for i in range(self.workers):
                self.start_worker(f"w{i + 1}", wait=False)
            for w in self.members:
                self.wait_ready(w)
        except BaseException:
            self.stop()
            raise
        return self

    # ---- workers ------------------------------------------------------------------------------------

    def worker_env(self, worker_id: str, http_port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAWAL_")}
        env.update({k: v for k, v in os.environ.items() if k.startswith("KAWAL_") and k != "KAWAL_HTTP_PORT"})
        assert self.mqtt_url is not None and self.cluster_url is not None
        env.update(
            KAWAL_DB=self.db,
            KAWAL_MQTT_URL=self.mqtt_url,
            KAWAL_CLUSTER_URL=self.cluster_url,
            KAWAL_WORKER_ID=worker_id,
            KAWAL_HTTP_HOST="127.0.0.1",
            KAWAL_HTTP_PORT=str(http_port),
        )
        env.update(self.env)
        return env

    def start_worker(self, worker_id: str, wait: bool = True) -> Worker:
        port = free_port()
        w = Worker(worker_id, port, self.workdir / f"{worker_id}.log")
        log = open(w.log_path, "ab")  # noqa: SIM115 - the child owns it
        w.proc = subprocess.Popen(
            [sys.executable, "-m", "kawal", "serve"],
            env=self.worker_env(worker_id, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()
        self.members.append(w)
        if wait:
            self.wait_ready(w)
        return w

    def wait_ready(self, w: Worker) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if w.proc is not None and w.proc.poll() is not None:
                raise ClusterError(f"worker {w.worker_id} exited with {w.proc.returncode}:\n{w.log_tail()}")
            try:
                with urllib.request.urlopen(f"{w.http_url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ClusterError(f"worker {w.worker_id} not ready after {self.startup_timeout}s:\n{w.log_tail()}")

    def kill(self, w: Worker) -> None:
        """kill -9: no snapshot, no goodbye; its partitions must move by themselves."""
        if w.proc is not None and w.proc.poll() is None:
            w.proc.send_signal(signal.SIGKILL)
            w.proc.wait()

    def endpoints(self) -> dict[str, Any]:
        """The line `kawal cluster` prints (CONTRACT 3.1), with the engine's URL too."""
        return {
            "mqtt_url": self.mqtt_url,
            "cluster_url": self.cluster_url,
            "workers": [{"worker_id": w.worker_id, "http_url": w.http_url, "pid": w.pid} for w in self.members],
        }

    def stop(self) -> None:
        for w in self.members:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.terminate()
        for w in self.members:
            if w.proc is not None:
                try:
                    w.proc.wait(30)
                except subprocess.TimeoutExpired:
                    w.proc.kill()
                    w.proc.wait()
        if self.nats is not None:
            self.nats.stop()
        stop_process(self._mosquitto, 10)


def _wait_port(port: int, timeout: float) -> None:
    if not wait_listening(port, timeout):
        raise ClusterError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")
