"""The publisher's inputs and outputs: the broker address it connects to, its error, and its statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse


class PublishError(RuntimeError):
    """The broker could not be reached, refused the connection, or stopped acknowledging."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """`mqtt://[user:pass@]host[:port]` (also `tcp://`, and `mqtts://` for TLS)."""
        u = urlparse(url if "://" in url else f"mqtt://{url}")
        if u.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
            raise ValueError(f"unsupported MQTT URL scheme {u.scheme!r} in {url!r}")
        tls = u.scheme in ("mqtts", "ssl")
        if not u.hostname:
            raise ValueError(f"no host in MQTT URL {url!r}")
        return cls(
            u.hostname,
            u.port or (8883 if tls else 1883),
            unquote(u.username) if u.username else None,
            unquote(u.password) if u.password else None,
            tls,
        )


@dataclass
class PublishStats:
    messages: int = 0
    readings: int = 0  # readings sent, repeats included
    unique_readings: int = 0  # distinct readings: what the service should store
    batches: int = 0
    statuses: int = 0
    bytes: int = 0
    acked: int = 0
    wall_s: float = 0.0
    sim_from: float | None = None
    sim_to: float | None = None
    max_lag_s: float = 0.0  # how far behind schedule publishing fell (paced runs)
    first_publish: dict[str, float] = field(default_factory=dict)  # truth id -> wall time of its evidence
    stopped: bool = False

    @property
    def rate(self) -> float:
        return self.messages / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "readings": self.readings,
            "unique_readings": self.unique_readings,
            "batches": self.batches,
            "statuses": self.statuses,
            "bytes": self.bytes,
            "acked": self.acked,
            "wall_s": round(self.wall_s, 3),
            "messages_per_s": round(self.rate, 1),
            "max_lag_s": round(self.max_lag_s, 3),
            "stopped": self.stopped,
        }
