"""PostgreSQL LISTEN/NOTIFY: what another worker (or a command) committed reaches this worker at once.

- `kawal_alerts` (an alert_events row id, from a trigger): this worker's live stream carries every
  alert change of the cluster, its own included, in commit order.
- `kawal_trips` (a trip id): the worker that holds the trip's tracker updates its detector.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from alerts.broadcast import Broadcaster
from alerts.model import Alert

log = logging.getLogger(__name__)

WAIT_S = 0.05
RECONNECT_S = 1.0


class SilentBroadcaster(Broadcaster):
    """The alert store's broadcaster in cluster mode: changes reach the streams through NOTIFY instead,
    so that a worker's stream has its own and the others' changes in one order, each once."""

    def publish(self, event_id: int, alert: Alert, data: str | None = None) -> None:
        return None


class Listener:
    def __init__(
        self,
        url: str,
        broadcaster: Broadcaster,
        on_trip: Callable[[str], None],
        on_listening: Callable[[], None],
    ) -> None:
        self.url = url
        self.broadcaster = broadcaster
        self.on_trip = on_trip
        self.on_listening = on_listening  # (re)connected: what changed while not listening must be read again
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._connected_before = False
        self._thread = threading.Thread(target=self._run, name="kawal-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute("LISTEN kawal_alerts")
                    conn.execute("LISTEN kawal_trips")
                    if self.listening.is_set() or self._connected_before:
                        self.on_listening()
                    self._connected_before = True
                    self.listening.set()
                    while not self._stop.is_set():
                        self._round(conn)
            except Exception:
                log.exception("listening for cluster changes failed; reconnecting")
            self.listening.clear()
            self._stop.wait(RECONNECT_S)

    def _round(self, conn: psycopg.Connection[Any]) -> None:
        events: list[int] = []
        trips: list[str] = []
        for n in conn.notifies(timeout=WAIT_S if not events else 0.0):
            if n.channel == "kawal_alerts":
                events.append(int(n.payload))
            elif n.channel == "kawal_trips":
                trips.append(n.payload)
        if events:
            rows = conn.execute(
                "SELECT event_id, alert FROM alert_events WHERE event_id = ANY(%s) ORDER BY event_id", (events,)
            ).fetchall()
            by_id = {int(r[0]): str(r[1]) for r in rows}
            for event_id in events:  # commit order
                data = by_id.get(event_id)
                if data is not None:
                    self.broadcaster.publish(event_id, Alert.model_validate_json(data), data)
        for trip_id in dict.fromkeys(trips):
            self.on_trip(trip_id)
