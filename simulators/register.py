"""Registering a scenario's trips with a running Kawal through its API (CONTRACT 2.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


class RegistrationError(RuntimeError):
    """A trip was refused (status and reason included) or the API could not be reached."""


def register_trips(
    api_url: str,
    token: str,
    trips: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    concurrency: int = 4,
    timeout: float = 30.0,
) -> int:
    """PUT every (trip_id, body) to {api_url}/api/v1/trips/{trip_id} with an admin token.

    Returns how many were stored. Raises RegistrationError on the first refusal, naming the trip and
    quoting the API's reason.
    """
    base = api_url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"}
    items = list(trips)
    with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:

        def put(item: tuple[str, Mapping[str, Any]]) -> None:
            trip_id, body = item
            try:
                r = client.put(f"/api/v1/trips/{trip_id}", json=dict(body))
            except httpx.HTTPError as e:
                raise RegistrationError(f"cannot reach the Kawal API at {base}: {e}") from e
            if r.status_code not in (200, 201):
                raise RegistrationError(f"trip {trip_id} refused with {r.status_code}: {r.text[:500]}")

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for _ in pool.map(put, items):
                pass
    return len(items)
