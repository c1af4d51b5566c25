"""Pieces every router shares: documented error responses and time query parameters."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from api.schemas import ErrorOut
from kawal.timeutil import parse_time

_E401 = {
    "model": ErrorOut,
    "description": "missing or unknown token",
    "content": {"application/json": {"example": {"detail": "unknown token"}}},
}
_E403 = {
    "model": ErrorOut,
    "description": "the token's role is too low",
    "content": {
        "application/json": {"example": {"detail": "this needs the admin role; the token is viewer"}}
    },
}


def errors(*codes: int, not_found: str = "not found") -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: 401 and 403 always, plus the given codes."""
    out: dict[int | str, dict[str, Any]] = {401: _E401, 403: _E403}
    for code in codes:
        if code == 404:
            out[404] = {
                "model": ErrorOut,
                "description": not_found,
                "content": {"application/json": {"example": {"detail": not_found}}},
            }
        elif code == 409:
            out[409] = {"model": ErrorOut, "description": "conflicts with the current state"}
        elif code == 400:
            out[400] = {"model": ErrorOut, "description": "the body could not be read (not UTF-8 JSON)"}
    return out


def time_param(name: str, value: str | None) -> float | None:
    """A time query parameter: RFC 3339 or Unix seconds. A bad value is a 422 like any other."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as e:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", name), "msg": str(e), "input": value}]
        ) from e


TIME_DOC = "RFC 3339 (e.g. 2024-11-20T07:00:00+07:00) or Unix seconds"
