"""A private nats-server with JetStream, for `kawal cluster` and the tests (Debian's `nats-server`)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

from kawal.procs import free_port, stop_process, wait_listening


class NatsError(RuntimeError):
    pass


def find_nats_server() -> str | None:
    return shutil.which("nats-server") or next(
        (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if Path(p).exists()), None
    )


class PrivateNats:
    """nats-server -js on 127.0.0.1, its store under `workdir`; the port stays the same across restarts."""

    def __init__(self, workdir: Path, port: int = 0) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, timeout: float = 20.0) -> PrivateNats:
        binary = find_nats_server()
        if binary is None:
            raise NatsError("nats-server is not installed (Debian package nats-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "nats-server.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.workdir / "jetstream")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait_listening(self.port, timeout, self.proc):
            return self
        if self.proc.poll() is not None:
            raise NatsError(f"nats-server exited with {self.proc.returncode}; see {self.workdir}/nats-server.log")
        raise NatsError(f"nats-server not listening on {self.port} after {timeout}s")

    def stop(self, kill: bool = False) -> None:
        stop_process(self.proc, 20, signal.SIGKILL if kill else signal.SIGTERM)
        self.proc = None
