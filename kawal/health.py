"""What /healthz reports: the service's own view of whether it can take and store readings right now.

Not ready means a 503 with every reason at once: the stores are not open yet, the broker is lost (the
consumer says why), the store refuses writes (disk full, read-only, locked: the pipeline's last error), the
ingest worker stopped, or ingest is behind past a bound (the oldest message in hand waits longer than
KAWAL_HEALTH_MAX_LAG_S, or more than KAWAL_HEALTH_MAX_QUEUE messages wait).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.mqtt import Consumer
    from ingest.pipeline import IngestPipeline


class Health:
    def __init__(self, max_lag_s: float = 30.0, max_queue: int = 50_000) -> None:
        self.max_lag_s = max_lag_s
        self.max_queue = max_queue
        self.stores_open = False
        self.consumer: Consumer | None = None
        self.pipeline: IngestPipeline | None = None
        self.was_ready = False  # "starting" until the first time everything was fine, "unavailable" after
        # Cluster mode: a worker that does not bridge MQTT has no consumer; other parts report through checks
        # (the engine connection), each a reason or None.
        self.needs_consumer = True
        self.checks: list[Callable[[], str | None]] = []

    def problems(self) -> list[str]:
        """Every reason the service is not ready, in a few words each (empty when it is)."""
        if not self.stores_open:
            return ["opening the stores"]
        out: list[str] = []
        c = self.consumer
        if c is None:
            if self.needs_consumer:
                out.append("starting the MQTT consumer")
        elif not c.subscribed.is_set():
            out.append(c.reason or "subscribing to the MQTT topics")
        out.extend(r for r in (check() for check in self.checks) if r is not None)
        p = self.pipeline
        if p is not None:
            if not p.alive():
                out.append("the ingest worker is not running")
            if p.store_error is not None:
                out.append(f"cannot write to the store: {p.store_error}")
            behind = p.behind_s(time.time())
            if behind > self.max_lag_s:
                out.append(f"ingest is {behind:.0f} s behind (bound {self.max_lag_s:g} s)")
            queued = p.queued()
            if queued > self.max_queue:
                out.append(f"{queued} messages wait for ingest (bound {self.max_queue})")
        if not out:
            self.was_ready = True
        return out

    def ready(self) -> bool:
        return not self.problems()

    def reason(self) -> str | None:
        """The reasons joined by "; " (None when ready)."""
        return "; ".join(self.problems()) or None
