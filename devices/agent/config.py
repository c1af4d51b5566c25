"""The agent's config file, TOML or JSON (by suffix): written by `kawal devices add --agent-config`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kawal.trips import ID_RE


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracker_id: str
    broker_url: str = Field(description="mqtt://host:port, or mqtts://host:port for TLS")
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = Field(None, description="CA certificate that signed the broker's (mqtts://)")

    gpsd_host: str = "127.0.0.1"
    gpsd_port: int = 2947
    # GPIO pins in gpiozero's naming ("GPIO17", "BOARD11" or 17); "" (or null in JSON): not fitted.
    seal_pin: str | int | None = "GPIO17"
    tamper_pin: str | int | None = "GPIO27"
    debounce_s: float = Field(0.1, gt=0, le=2, description="a contact must hold this long to count")
    battery_path: Path | None = Field(None, description="sysfs file, e.g. /sys/class/power_supply/BAT0/capacity")

    queue_path: Path = Path("/var/lib/kawal-agent/queue.db")
    queue_max: int = Field(100_000, ge=10, description="readings kept while offline; the oldest go first")
    interval_s: float = Field(60.0, gt=0, description="position interval while standing (GPS time)")
    moving_interval_s: float = Field(10.0, gt=0, description="position interval while moving")
    moving_kmh: float = Field(5.0, ge=0, description="speed above which the crate counts as moving")
    batch_max: int = Field(1000, ge=1, le=1000, description="readings per backlog message (CONTRACT 1.1)")
    inflight_max: int = Field(20, ge=1, le=65535, description="messages awaiting their PUBACK at once")
    keepalive_s: int = Field(30, ge=5)

    @field_validator("tracker_id")
    @classmethod
    def _id(cls, v: str) -> str:
        if ID_RE.fullmatch(v) is None:
            raise ValueError("tracker_id must match [A-Za-z0-9._-]{1,64}")
        return v

    @field_validator("seal_pin", "tamper_pin", "battery_path", "ca_file", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v  # TOML has no null: an empty string says "not fitted"

    @field_validator("broker_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("broker_url must be mqtt://host:port or mqtts://host:port")
        return v

    @model_validator(mode="after")
    def _intervals(self) -> AgentConfig:
        if self.moving_interval_s > self.interval_s:
            raise ValueError("moving_interval_s must not exceed interval_s")
        return self

    @property
    def tls(self) -> bool:
        return urlsplit(self.broker_url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.broker_url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.broker_url).port or (8883 if self.tls else 1883)

    @property
    def telemetry_topic(self) -> str:
        return f"kawal/v1/{self.tracker_id}/telemetry"

    @property
    def status_topic(self) -> str:
        return f"kawal/v1/{self.tracker_id}/status"


def load_config(path: Path) -> AgentConfig:
    """Read and validate a config file (TOML unless the suffix is .json)."""
    raw = path.read_bytes()
    data: Any = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    return AgentConfig.model_validate(data)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def config_text(values: dict[str, Any], suffix: str) -> str:
    """A config file's text: JSON for .json, else TOML. None values are left out."""
    values = {k: v for k, v in values.items() if v is not None}
    if suffix == ".json":
        return (
            json.dumps({k: v if isinstance(v, int | float | bool) else str(v) for k, v in values.items()}, indent=2)
            + "\n"
        )
    head = "# Kawal tracker agent (`kawal agent --config THIS_FILE`); it holds the MQTT password: keep it 0600.\n"
    return head + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())


def write_config(path: Path, values: dict[str, Any]) -> AgentConfig:
    """Validate and write a config file, readable by its owner only (it holds the MQTT password)."""
    import os

    from devices.provision import write_atomic

    cfg = AgentConfig.model_validate({k: v for k, v in values.items() if v is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    os.chmod(path, 0o600)
    write_atomic(path, config_text(values, path.suffix))
    return cfg
