"""The agent's loop: fixes from gpsd and seal changes in, readings into the queue, the queue out to MQTT.

What makes a reading (CONTRACT 1.1):
- a seal change, at once, with the last fix if it is recent;
- a fix, when `moving_interval_s` (moving) or `interval_s` (standing) of GPS time has passed since the
  last position sent; GPS time, so a replayed log (gpsfake) runs the agent at the replay's pace;
- without a fix, a reading without `lat`/`lon` every `interval_s` of wall-clock time, so the server can
  tell a silent tracker from one that has lost its fix.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from devices.agent.battery import Battery
from devices.agent.config import AgentConfig
from devices.agent.gpsd import Fix, GpsdClient
from devices.agent.queue import ReadingQueue
from devices.agent.seal import SealSensor, SealState
from devices.agent.uplink import Uplink

log = logging.getLogger(__name__)

FIX_FRESH_S = 30.0  # a fix older than this (by the wall clock) is not attached to a reading


class Agent:
    def __init__(self, cfg: AgentConfig, pin_factory: Any = None) -> None:
        self.cfg = cfg
        self.store = ReadingQueue(cfg.queue_path, cfg.queue_max)
        self.uplink = Uplink(cfg, self.store)
        self.gpsd = GpsdClient(cfg.gpsd_host, cfg.gpsd_port)
        self.battery = Battery(cfg.battery_path)
        self.seal_events: queue.SimpleQueue[SealState] = queue.SimpleQueue()
        self.seal: SealSensor | None = None
        if cfg.seal_pin is not None:
            self.seal = SealSensor(cfg.seal_pin, cfg.tamper_pin, self._seal_changed, cfg.debounce_s, pin_factory)
        self.stop_event = threading.Event()
        self.last_fix: Fix | None = None
        self.last_fix_wall = 0.0
        self.last_position_ts: float | None = None  # GPS time of the last position sent
        self.last_reading_wall = time.monotonic()  # the first no-fix reading comes one interval in

    def _seal_changed(self, state: SealState) -> None:
        self.seal_events.put(state)

    def reading(self, ts: float, fix: Fix | None) -> dict[str, Any]:
        r: dict[str, Any] = {"id": self.cfg.tracker_id, "ts": round(ts, 3)}
        if fix is not None:
            r.update(lat=fix.lat, lon=fix.lon)
            for key in ("acc", "spd", "hdg"):
                value = getattr(fix, key)
                if value is not None:
                    r[key] = value
        bat = self.battery.percent()
        if bat is not None:
            r["bat"] = round(bat, 1)
        if self.seal is not None:
            r["seal"] = self.seal.state
        return r

    def enqueue(self, reading: dict[str, Any]) -> None:
        body = self.store.add(reading)
        self.last_reading_wall = time.monotonic()
        log.debug("queued %s", body)

    def on_fix(self, fix: Fix) -> None:
        self.last_fix, self.last_fix_wall = fix, time.monotonic()
        moving = fix.spd is not None and fix.spd >= self.cfg.moving_kmh
        interval = self.cfg.moving_interval_s if moving else self.cfg.interval_s
        last = self.last_position_ts
        # A GPS clock that went backwards (receiver reset, a restarted replay) starts the interval anew.
        if last is None or fix.ts - last >= interval or fix.ts < last:
            self.last_position_ts = fix.ts
            self.enqueue(self.reading(fix.ts, fix))

    def step(self, timeout: float = 0.1) -> None:
        """One turn of the loop: seal changes, fixes, the no-fix heartbeat, then the uplink."""
        while True:
            try:
                self.seal_events.get_nowait()
            except queue.Empty:
                break
            fresh = self.last_fix is not None and time.monotonic() - self.last_fix_wall < FIX_FRESH_S
            self.enqueue(self.reading(time.time(), self.last_fix if fresh else None))
            self.uplink.pump()  # a seal change goes out before anything else waits
        for fix in self.gpsd.poll(timeout, time.monotonic()):
            self.on_fix(fix)
        now = time.monotonic()
        if now - self.last_reading_wall >= self.cfg.interval_s and now - self.last_fix_wall >= self.cfg.interval_s:
            self.enqueue(self.reading(time.time(), None))
        self.uplink.pump()

    def run(self) -> None:
        log.info(
            "agent for %s: %d readings queued, next seq %d", self.cfg.tracker_id, self.store.size(), self.store.next_seq
        )
        self.uplink.start()
        if self.seal is not None:
            while not self.seal_events.empty():  # superseded by the state now
                self.seal_events.get_nowait()
            self.seal_events.put(self.seal.state)  # the state at start-up is a reading too
        try:
            while not self.stop_event.is_set():
                self.step()
        finally:
            self.close()

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self.uplink.pump()
        self.uplink.stop()
        if self.seal is not None:
            self.seal.close()
        self.gpsd.close()
        self.store.close()
