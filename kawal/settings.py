"""All configuration, read once from ``KAWAL_*`` environment variables (CONTRACT section 3)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAWAL_", extra="ignore")

    # MQTT: unset means an embedded broker started by Kawal itself.
    mqtt_url: str | None = Field(None, description="mqtt://[user:pass@]host:port of the broker")
    mqtt_client_id: str = Field("kawal", description="client id of the persistent MQTT session")
    mqtt_share_group: str | None = Field(
        None, description="join $share/<group>/... so several Kawal processes split the load"
    )
    mqtt_session_expiry_s: int = Field(7 * 24 * 3600, description="MQTT 5 session expiry interval")
    mqtt_protocol: Literal["auto", "5", "3.1.1"] = Field("auto", description="MQTT protocol version")
    mqtt_process: bool = Field(
        True, description="receive MQTT in a child process, so decoding and detection never slow the network loop"
    )
    embedded_broker: Literal["auto", "mosquitto", "amqtt"] = Field(
        "auto", description="embedded broker: a private mosquitto when installed, else amqtt"
    )
    embedded_mqtt_host: str = "127.0.0.1"
    embedded_mqtt_port: int = Field(1883, description="port of the embedded broker (0 picks a free one)")

    http_host: str = "127.0.0.1"
    http_port: int = 8080

    db: str = Field("./kawal.db", description="path of the embedded SQLite database, or a postgresql:// URL")

    @field_validator("db", mode="before")
    @classmethod
    def _db_as_text(cls, v: object) -> object:
        # A path object is fine too; a URL cannot be a Path (it would lose the "//").
        return os.fspath(v) if isinstance(v, os.PathLike) else v

    influx_url: str | None = None
    influx_token: SecretStr | None = None
    influx_org: str = "kawal"
    influx_bucket: str = "kawal"
    influx_batch_size: int = 5000

    clock: Literal["wall", "event"] = "wall"
    admin_token: SecretStr | None = None

    tick_interval_s: float = Field(1.0, description="how often time-driven checks run (wall clock)")
    snapshot_interval_s: float = Field(30.0, description="how often detector state is snapshotted")
    tile_url: str | None = Field(None, description="optional base-map tile URL for the dashboard")

    # Geography (places on alerts and crates, the offline map): the administrative boundaries.
    boundaries: str | None = Field(
        None,
        description="GeoJSON file of kecamatan and desa boundaries for `place` (CONTRACT 2.3); "
        "default: the packaged boundaries of Jombang regency",
    )

    # ---- Notifications (CONTRACT 2.7) ----
    smtp_url: SecretStr | None = Field(None, description="smtp://[user:pass@]host:port or smtps://, for email")
    smtp_from: str = Field("kawal@localhost", description="sender address of notification emails")
    public_url: str | None = Field(
        None, description="the dashboard's address in notifications (unset: http://KAWAL_HTTP_HOST:PORT)"
    )
    notify_poll_s: float = Field(0.25, gt=0, description="how often a channel's worker looks for new deliveries")
    notify_retry_min_s: float = Field(1.0, gt=0, description="first retry delay of a failed delivery")
    notify_retry_max_s: float = Field(60.0, gt=0, description="longest retry delay of a failed delivery")
    notify_timeout_s: float = Field(10.0, gt=0, description="time a receiver or SMTP server has to answer")

    # Hardening: health bounds, TLS to the broker, per-tracker flood limit.
    health_max_lag_s: float = Field(
        30.0, description="/healthz answers 503 when the oldest message in ingest waits longer than this"
    )
    health_max_queue: int = Field(50_000, description="/healthz answers 503 when more messages than this wait")
    mosquitto_password_file: str | None = Field(
        None, description="password file of `kawal devices`; the embedded broker uses it off loopback"
    )
    mosquitto_acl_file: str | None = Field(None, description="ACL file of `kawal devices` (see above)")
    mqtt_ca_file: str | None = Field(None, description="CA certificate(s) to verify an mqtts:// broker (PEM)")
    mqtt_cert_file: str | None = Field(None, description="client certificate for an mqtts:// broker (PEM)")
    mqtt_key_file: str | None = Field(None, description="private key of the client certificate (PEM)")
    flood_rate_per_s: float = Field(20.0, gt=0, description="messages a second one tracker may send on average")
    flood_burst: float = Field(600.0, ge=1, description="messages one tracker may send at once (a backlog)")
    flood_drop: bool = Field(False, description="drop a tracker's messages beyond its rate, instead of only counting")
    db_check_at_start: bool = Field(
        True, description="PRAGMA quick_check of the SQLite file before serving (about 6 ms per MB, page cache warm)"
    )
    sse_send_timeout_s: float = Field(
        30.0, gt=0, description="an alert-stream client that takes no bytes for this long is dropped"
    )

    # ---- cluster mode (CONTRACT 3.1): several workers on one PostgreSQL and one engine (cluster/) ----
    cluster_url: str | None = Field(None, description="nats:// URL of the engine; unset: one process")
    worker_id: str | None = Field(None, description="this worker's name in the cluster (default: host-pid)")
    cluster_partitions: int = Field(32, ge=1, le=4096, description="partitions of the readings stream")
    cluster_stream: str = Field("KAWAL", description="name of the JetStream stream of tracker messages")
    cluster_stream_max_age_s: float = Field(7 * 24 * 3600, description="how long the stream keeps messages")
    cluster_dedup_window_s: float = Field(600, description="JetStream duplicate window (bridge re-publishes)")
    cluster_bridge: bool = Field(True, description="this worker also bridges MQTT into the engine")
    cluster_rebalance_s: float = Field(0.25, description="how often a worker checks partition ownership")
