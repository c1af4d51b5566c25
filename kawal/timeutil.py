"""Time parsing and formatting shared by the wire formats and the API."""

from __future__ import annotations

import math
from datetime import UTC, datetime

EPOCH_2000 = 946684800.0


def parse_time(value: object) -> float:
    """Unix seconds or an RFC 3339 string -> Unix seconds (float). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("time must be a number or an RFC 3339 string")
    if isinstance(value, int | float):
        t = float(value)
        if not math.isfinite(t):
            raise ValueError("time is not finite")
        return t
    if isinstance(value, str):
        s = value.strip()
        if ":" not in s:  # a number as text (an RFC 3339 time always has a colon, a number never)
            try:
                t = float(s)
            except ValueError:
                pass
            else:
                if not math.isfinite(t):
                    raise ValueError(f"time is not finite: {value!r}")
                return t
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError as e:
            raise ValueError(f"not an RFC 3339 time: {value!r}") from e
        if dt.tzinfo is None:
            raise ValueError(f"RFC 3339 time needs a UTC offset: {value!r}")
        return dt.timestamp()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetime needs a time zone")
        return value.timestamp()
    raise ValueError("time must be a number or an RFC 3339 string")


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def rfc3339(ts: float | None) -> str | None:
    """Unix seconds -> RFC 3339 in UTC with millisecond precision, e.g. 2024-11-20T01:15:30.120Z."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
