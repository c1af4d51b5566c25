from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.natsd import PrivateNats, find_nats_server
from storage import Database
from tests import backends
from tests.backends import BACKENDS, Backend
from tests.servers import KawalServer, Mosquitto, VictoriaMetrics


def _need(binary: str) -> None:
    if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
        pytest.fail(f"{binary} is not installed: run the README's test command, which installs it")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto on a free port."""
    _need("mosquitto")
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """Start private Mosquitto brokers with extra config lines (auth, ACLs)."""
    _need("mosquitto")
    started: list[Mosquitto] = []

    def make(extra_config: str = "", name: str = "mosquitto") -> Mosquitto:
        b = Mosquitto(tmp_path / f"{name}-{len(started)}", extra_config=extra_config).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A private VictoriaMetrics on a free port, keeping historical timestamps."""
    _need("victoria-metrics")
    vm = VictoriaMetrics(tmp_path / "vm").start()
    yield vm
    vm.stop()


@pytest.fixture
def kawal_factory(tmp_path: Path) -> Iterator[Callable[..., KawalServer]]:
    """Start `kawal serve` processes: kawal_factory(env={...}, name=...)."""
    started: list[KawalServer] = []

    # Not "kawal": a folder of that name in a subprocess's working directory would shadow the package for
    # `python -m kawal` under an editable install.
    def make(env: dict[str, str] | None = None, name: str = "kawal-service", start: bool = True) -> KawalServer:
        srv = KawalServer(tmp_path / name, env=dict(env or {}))
        started.append(srv)
        return srv.start() if start else srv

    yield make
    for s in started:
        s.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The storage backend under test: every storage-level test runs on SQLite and on PostgreSQL."""
    with backends.backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
def database(backend: Backend) -> Database:
    """A Database on a fresh store of the backend under test."""
    return backend.open()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (URL), dropped afterwards."""
    backends.need_postgres()
    with backends.postgres_database() as url:
        yield url


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[PrivateNats]:
    """A private nats-server with JetStream on a free port, its store in tmp_path."""
    if find_nats_server() is None:
        _need("nats-server")
    srv = PrivateNats(tmp_path / "nats").start()
    yield srv
    srv.stop()
