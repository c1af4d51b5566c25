"""One router per resource under /api/v1, plus /healthz and /metrics."""
