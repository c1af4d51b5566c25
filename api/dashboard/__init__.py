"""The ops dashboard: a static page at `/` that talks to the HTTP API (see docs/dashboard.md)."""
