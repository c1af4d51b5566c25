"""Helpers for the reference agent's tests: an MQTT observer of one tracker's topics, and agent configs."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.agent.config import AgentConfig


@dataclass
class Observer:
    """Subscribes to kawal/v1/{tracker}/# with a persistent session (it survives a broker restart, so no
    message published while it reconnects is missed) and keeps every message in arrival order."""

    port: int
    tracker_id: str
    messages: list[tuple[str, Any, bool]] = field(default_factory=list)  # (topic leaf, payload, retained)
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Observer:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"observer-{self.tracker_id}",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # paho takes float delays
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("observer not subscribed")
        return self

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"kawal/v1/{self.tracker_id}/#", qos=1)

    def _on_subscribe(self, *_: Any) -> None:
        self.subscribed.set()  # the broker has the subscription (SUBACK): it is in its session from now on

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        leaf = msg.topic.rsplit("/", 1)[-1]
        payload: Any = msg.payload.decode()
        if leaf == "telemetry":
            payload = json.loads(payload)
        with self.lock:
            self.messages.append((leaf, payload, bool(msg.retain)))

    def readings(self) -> list[dict[str, Any]]:
        """Every reading received, batches unpacked, in arrival order."""
        out: list[dict[str, Any]] = []
        with self.lock:
            for leaf, payload, _ in self.messages:
                if leaf == "telemetry":
                    out += payload if isinstance(payload, list) else [payload]
        return out

    def batches(self) -> list[list[dict[str, Any]]]:
        with self.lock:
            return [p for leaf, p, _ in self.messages if leaf == "telemetry" and isinstance(p, list)]

    def statuses(self) -> list[str]:
        with self.lock:
            return [p for leaf, p, _ in self.messages if leaf == "status"]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def agent_config(tmp_path: Path, port: int, **overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {
        "tracker_id": "AGT-0001",
        "broker_url": f"mqtt://127.0.0.1:{port}",
        "queue_path": tmp_path / "agent" / "queue.db",
        "gpsd_port": 1,  # nothing listens there: no GPS fitted
        "interval_s": 1.0,
        "moving_interval_s": 1.0,
        "keepalive_s": 5,
    }
    values.update(overrides)
    return AgentConfig.model_validate(values)
