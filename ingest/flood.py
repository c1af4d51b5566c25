"""One tracker flooding the broker: counted, and optionally limited, so the others keep their delay.

A token bucket per tracker (per topic: a tracker's telemetry and its status): `rate_per_s` messages a second
on average, bursts of `burst` (a tracker that comes back after an outage sends its backlog at once). A message
beyond that is a flood message: counted in `kawal_flood_messages_total`, logged once a minute per tracker with
its id, and, with KAWAL_FLOOD_DROP, dropped before decoding as a counted rejection (`rate_limited`, not
stored: storing a flood's payloads would be the flood again). It is still acknowledged, like every rejection.
"""

from __future__ import annotations

import logging

from kawal.metrics import Metrics

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0
RATE_LIMITED = "rate_limited"


class FloodGuard:
    __slots__ = ("_buckets", "_logged", "burst", "drop", "metrics", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float, drop: bool, metrics: Metrics) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.drop = drop
        self.metrics = metrics
        self._buckets: dict[str, list[float]] = {}  # tracker segment -> [tokens, last refill]
        self._logged: dict[str, float] = {}

    def admit(self, topic: str, now: float) -> bool:
        """False when the message is a flood message that is to be dropped. On the hot path: keyed by the
        topic itself (a tracker's telemetry and its rare status each have a bucket), no parsing."""
        b = self._buckets.get(topic)
        if b is None:
            self._buckets[topic] = [self.burst - 1.0, now]
            return True
        tokens = b[0] + (now - b[1]) * self.rate_per_s
        if tokens > self.burst:
            tokens = self.burst
        b[1] = now
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            return True
        b[0] = tokens
        return self._flooded(topic, now)

    def _flooded(self, topic: str, now: float) -> bool:
        parts = topic.split("/", 3)
        key = parts[2] if len(parts) > 2 else topic
        self.metrics.flood_messages.inc()
        if now - self._logged.get(key, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[key] = now
            log.warning(
                "tracker %r sends more than %g messages/s (bursts of %g): %s",
                key,
                self.rate_per_s,
                self.burst,
                "dropping the excess" if self.drop else "counting the excess (KAWAL_FLOOD_DROP=true drops it)",
            )
        if self.drop:
            self.metrics.readings_rejected.labels(RATE_LIMITED).inc()
            return False
        return True
