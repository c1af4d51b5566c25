"""Battery percent from a sysfs capacity file (e.g. /sys/class/power_supply/BAT0/capacity), or none."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class Battery:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.warned = False

    def percent(self) -> float | None:
        """0-100, or None when absent or unreadable (a reading without `bat` is still a reading)."""
        if self.path is None:
            return None
        try:
            value = float(self.path.read_text().strip())
        except (OSError, ValueError) as e:
            if not self.warned:
                log.warning("battery at %s unreadable: %s", self.path, e)
                self.warned = True
            return None
        return max(0.0, min(100.0, value))
