"""What the API needs from the rest of the service, and how a request reaches it.

`create_app` stores the AppContext on ``app.state.ctx``; routers (the dashboard's too) read it with the
`get_ctx` dependency. The readings, registry and health objects are described as protocols so the API
depends on what it calls, not on the modules that implement it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from alerts.broadcast import Broadcaster
from alerts.store import AlertStore
from api.auth import TokenStore
from devices.reading import Reading
from kawal.audit import AuditLog
from kawal.clock import Clock, WallClock
from kawal.metrics import Metrics
from kawal.places import Places
from kawal.settings import Settings
from kawal.trips import Trip, TripRepository
from storage import Database


class ReadingSource(Protocol):
    """ingest.readings.ReadingStore, read side."""

    def track(
        self, tracker_id: str, since: float | None = ..., until: float | None = ..., limit: int = ...
    ) -> list[Reading]: ...

    def latest(self, tracker_id: str) -> Reading | None: ...

    def latest_fix(self, tracker_id: str) -> Reading | None: ...

    def last_seal(self, tracker_id: str) -> tuple[str, float] | None: ...

    def rejected(self, limit: int = ...) -> list[dict[str, Any]]: ...


class TrackerDirectory(Protocol):
    """devices.registry.TrackerRegistry, as the API uses it."""

    def get(self, tracker_id: str) -> dict[str, Any] | None: ...

    def by_crate(self, crate_id: str) -> dict[str, Any] | None: ...

    def list(self) -> list[dict[str, Any]]: ...

    def assign(self, tracker_id: str, crate_id: str | None, now: float | None = ...) -> None: ...


class HealthCheck(Protocol):
    was_ready: bool

    def ready(self) -> bool: ...

    def reason(self) -> str | None: ...

    def problems(self) -> list[str]: ...


def _ignore_trip(trip: Trip) -> None:
    return None


@dataclass
class AppContext:
    settings: Settings
    db: Database
    metrics: Metrics
    trips: TripRepository
    alerts: AlertStore
    broadcaster: Broadcaster
    readings: ReadingSource
    registry: TrackerDirectory
    tokens: TokenStore
    health: HealthCheck
    on_trip_changed: Callable[[Trip], None] = _ignore_trip
    # The clock that decides "now" for crate states (in storage / in transit); the service's own clock.
    clock: Clock = field(default_factory=WallClock)

    @property
    def audit(self) -> AuditLog:
        return self.alerts.audit

    @property
    def places(self) -> Places:
        """The administrative areas (kawal/places.py), the ones the alerts' places come from."""
        return self.alerts.places


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]
