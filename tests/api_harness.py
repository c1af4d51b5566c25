"""The API on a temporary SQLite database, with the real stores, for component tests.

`make_context` builds an AppContext of real components (no mocks); `ApiServer` runs the app under uvicorn
in a thread on a free port, for the tests that need a real socket (the SSE stream).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from alerts.broadcast import Broadcaster
from alerts.store import AlertStore
from api.app import create_app
from api.auth import Role, TokenStore
from api.deps import AppContext
from devices.reading import Reading
from devices.registry import TrackerRegistry
from ingest.readings import ReadingStore
from kawal.audit import AuditLog
from kawal.metrics import Metrics
from kawal.settings import Settings
from kawal.trips import TRIP_IN_EXAMPLE, Trip, TripRepository
from storage import Database
from storage.sqlite import SqliteDatabase
from tests.servers import free_port

ADMIN_TOKEN = "test-admin-token"
# The fields every alert carries on the wire (CONTRACT 2.3), in lists, single reads and the stream.
ALERT_FIELDS = frozenset(
    {
        "id",
        "type",
        "severity",
        "status",
        "trip_id",
        "crate_id",
        "tracker_id",
        "ts",
        "raised_at",
        "lat",
        "lon",
        "details",
    }
)


class Ready:
    """Health of an API without an ingest behind it (the real one is tested in tests/test_health.py)."""

    def __init__(self, ready: bool = True) -> None:
        self.is_ready = ready
        self.was_ready = False

    def problems(self) -> list[str]:
        return [] if self.is_ready else ["not ready"]

    def ready(self) -> bool:
        return self.is_ready

    def reason(self) -> str | None:
        return None if self.is_ready else "not ready"


@dataclass
class Harness:
    ctx: AppContext
    app: FastAPI
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token
    trip_changes: list[Trip] = field(default_factory=list)

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def store_readings(self, readings: list[Reading]) -> list[Reading]:
        store = self.ctx.readings
        assert isinstance(store, ReadingStore)
        with self.ctx.db.write() as c:
            return store.insert(c, readings, time.time())


def make_harness(tmp_path: Path, db: Database | None = None, **app_kwargs: Any) -> Harness:
    """The API on a store: a SQLite file in tmp_path, or `db` (the `database` fixture: both backends)."""
    db = SqliteDatabase(tmp_path / "kawal.db") if db is None else db
    metrics = Metrics()
    audit = AuditLog(db)
    broadcaster = Broadcaster()
    settings = Settings.model_validate(
        {
            "db": db.location,
            "admin_token": ADMIN_TOKEN,
            "tile_url": "https://tiles.example/{z}/{x}/{y}.png",
        }
    )
    changes: list[Trip] = []
    ctx = AppContext(
        settings=settings,
        db=db,
        metrics=metrics,
        trips=TripRepository(db),
        alerts=AlertStore(db, audit, broadcaster, metrics),
        broadcaster=broadcaster,
        readings=ReadingStore(db),
        registry=TrackerRegistry(db),
        tokens=TokenStore(db, ADMIN_TOKEN, audit),
        health=Ready(True),
        on_trip_changed=changes.append,
    )
    app = create_app(ctx, **app_kwargs)
    h = Harness(ctx=ctx, app=app, trip_changes=changes)
    h.tokens["admin"] = ADMIN_TOKEN
    for role in (Role.VIEWER, Role.OPERATOR):
        h.tokens[str(role)] = ctx.tokens.create(f"test-{role}", role, actor="test")
    return h


class ApiServer:
    """uvicorn serving the app in a thread on a free port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=1,
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="test-api", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class SseEvent:
    id: str | None
    data: str | None
    comment: bool = False


def sse_events(response: httpx.Response) -> Iterator[SseEvent]:
    """Events and comments (heartbeats) of a text/event-stream, as they arrive."""
    event_id: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data or event_id is not None:
                yield SseEvent(event_id, "\n".join(data) if data else None)
            event_id, data = None, []
        elif line.startswith(":"):
            yield SseEvent(None, line[1:].strip(), comment=True)
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                event_id = value
            elif name == "data":
                data.append(value)


def trip_body(
    tracker_id: str = "TRK-0001",
    crate_id: str = "JBG-KS-0001",
    depart: float | str = 1_732_060_800,
    arrive: float | str = 1_732_071_600,
    **extra: Any,
) -> dict[str, Any]:
    """A valid CONTRACT 2.2 body (Jombang warehouse to PPK Diwek): the schema's example, with these values."""
    body = copy.deepcopy(TRIP_IN_EXAMPLE)  # callers change nested parts of their copy
    body.update(crate_id=crate_id, tracker_id=tracker_id, depart_after=depart, arrive_by=arrive)
    body.update(extra)
    return body


@contextmanager
def running_api(tmp_path: Path, **app_kwargs: Any) -> Iterator[tuple[Harness, httpx.Client]]:
    """The app on a real socket, and an httpx client for it (no token set: pass `headers=`)."""
    h = make_harness(tmp_path, **app_kwargs)
    with ApiServer(h.app) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield h, client
