"""The seal: a contact on the cable tie (closed while sealed) and a tamper loop, read through gpiozero.

Both are wired from a GPIO pin to ground, with the pin's pull-up: an intact contact reads low (active). The
seal contact opens when the tie is cut or the lid lifted; the tamper loop (a wire through the enclosure and
the tie's housing) opens when someone cuts into the tracker or bypasses the contact.

Debounce: a mechanical contact bounces for some milliseconds when it moves. Every edge (re)starts a settle
timer; only when the pins have held still for `debounce_s` is the state read and, if it changed, reported
once. A contact bouncing for 50 ms is therefore one event, whatever the number of edges; a lockout debounce
(gpiozero's bounce_time) could instead settle on a stale value if the last bounce fell inside its window.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from gpiozero import DigitalInputDevice

log = logging.getLogger(__name__)

SealState = Literal["closed", "open", "tampered"]


class SealSensor:
    """Calls `on_change(state)` once per settled change; `state` is the current settled state."""

    def __init__(
        self,
        seal_pin: str | int,
        tamper_pin: str | int | None,
        on_change: Callable[[SealState], None],
        debounce_s: float = 0.1,
        pin_factory: Any = None,
    ) -> None:
        self.on_change = on_change
        self.debounce_s = debounce_s
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.closed = False
        self.seal = DigitalInputDevice(seal_pin, pull_up=True, pin_factory=pin_factory)
        self.tamper = (
            None if tamper_pin is None else DigitalInputDevice(tamper_pin, pull_up=True, pin_factory=pin_factory)
        )
        self.state: SealState = self.read()
        for dev in (self.seal, self.tamper):
            if dev is not None:
                dev.when_activated = self._edge
                dev.when_deactivated = self._edge

    def read(self) -> SealState:
        """The pins' state right now: a broken tamper loop wins over the seal contact."""
        if self.tamper is not None and not self.tamper.is_active:
            return "tampered"
        return "closed" if self.seal.is_active else "open"

    def _edge(self, *_: Any) -> None:
        with self.lock:
            if self.closed:
                return
            if self.timer is not None:
                self.timer.cancel()
            self.timer = threading.Timer(self.debounce_s, self._settled)
            self.timer.daemon = True
            self.timer.start()

    def _settled(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.timer = None
            state = self.read()
            if state == self.state:
                return  # bounced and came back
            self.state = state
        log.info("seal %s", state)
        self.on_change(state)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.timer is not None:
                self.timer.cancel()
        for dev in (self.seal, self.tamper):
            if dev is not None:
                dev.close()
