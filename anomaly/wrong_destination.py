"""wrong_destination (major): in transit, at rest for more than max_stop_min inside a zone that is
another trip's origin or destination, and not the crate's own origin, destination or an allowed stop.

"At rest" is the same noise-aware stop cluster as unscheduled_stop (anomaly.motion); which zones belong to
other trips comes from anomaly.zones, a grid index over every trip's zones that answers in one cell lookup
at 100k trips. ts is when the stop began. Resolves when the crate moves on.
"""

from __future__ import annotations

from alerts.model import AlertType
from anomaly.base import Ctx
from anomaly.motion import STOP_FOREIGN, foreign_zones
from anomaly.state import TrackerState
from anomaly.unscheduled_stop import StopDetector


class WrongDestinationDetector(StopDetector):
    type = AlertType.WRONG_DESTINATION
    wanted = STOP_FOREIGN

    def details(self, c: Ctx, st: TrackerState) -> dict[str, object]:
        out = super().details(c, st)
        zones = [{"zone": name, "trip_id": trip_id, "kind": kind} for name, trip_id, kind in foreign_zones(c, st)]
        out["zones"] = zones
        if zones:
            out["zone"] = zones[0]["zone"]
        return out
