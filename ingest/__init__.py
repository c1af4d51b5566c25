"""Ingest: MQTT in, validated readings stored exactly once (SQLite, optionally InfluxDB)."""
