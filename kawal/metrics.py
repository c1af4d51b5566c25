"""Prometheus metrics, one registry per service instance (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # The four series of CONTRACT section 3 (prometheus-client adds the _total suffix).
        self.messages_received = Counter("kawal_messages_received", "MQTT messages received", registry=r)
        self.readings_stored = Counter(
            "kawal_readings_stored", "Readings stored (duplicates not counted)", registry=r
        )
        self.readings_rejected = Counter(
            "kawal_readings_rejected", "Rejected readings, by reason", ["reason"], registry=r
        )
        self.alerts_raised = Counter("kawal_alerts_raised", "Alerts raised, by type", ["type"], registry=r)
        # Extensions.
        self.readings_duplicate = Counter(
            "kawal_readings_duplicate", "Readings received again and ignored", registry=r
        )
        self.alerts_changed = Counter(
            "kawal_alerts_changed", "Alert state changes, by type and new status", ["type", "status"], registry=r
        )
        self.ingest_queue = Gauge("kawal_ingest_queue_messages", "MQTT messages waiting to be processed", registry=r)
        self.ingest_batch_seconds = Histogram(
            "kawal_ingest_batch_seconds", "Time to decode, store and detect one batch of messages", registry=r
        )
        self.influx_pending = Gauge(
            "kawal_influx_pending_readings", "Stored readings not yet written to InfluxDB", registry=r
        )
        self.influx_written = Counter("kawal_influx_written_readings", "Readings written to InfluxDB", registry=r)
        self.influx_errors = Counter("kawal_influx_write_errors", "Failed InfluxDB writes", registry=r)
        self.mqtt_connected = Gauge("kawal_mqtt_connected", "1 while connected to the broker", registry=r)
        self.http_requests = Counter(
            "kawal_http_requests", "HTTP requests, by route and status", ["method", "route", "status"], registry=r
        )
        self.http_seconds = Histogram(
            "kawal_http_request_seconds", "HTTP request duration", ["method", "route"], registry=r
        )
        self.sse_clients = Gauge("kawal_sse_clients", "Connected alert-stream clients", registry=r)
        self.flood_messages = Counter(
            "kawal_flood_messages", "Messages beyond their tracker's rate, dropped or not", registry=r
        )
        self.seq_missing = Gauge(
            "kawal_seq_missing_readings", "Readings trackers never delivered, from gaps in their seq", registry=r
        )
        self.detector_errors = Counter(
            "kawal_detector_errors", "Exceptions raised by the detection engine (logged, never fatal)", registry=r
        )
