"""A notification channel (CONTRACT 2.7), its filters, and the events it receives."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.model import AlertType, Severity

NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
NAME_RE = re.compile(NAME_PATTERN)
RAISED = "alert.raised"
UPDATED = "alert.updated"
ESCALATED = "alert.escalated"
# Most severe first; a channel's min_severity takes its own rank and every rank above.
SEVERITY_RANK: dict[str, int] = {"critical": 0, "major": 1, "minor": 2, "warning": 3}
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")

# Alert changes recorded by alerts/store.py, by action, and the event a channel receives for each.
# A detector's refresh of an open alert ("update") is not pushed: a moving crate refreshes a route
# deviation at every reading, and chat groups would drown; the dashboard's stream has every change.
# A reopen (the condition came back within the hold-off, alerts/reopen.py) is pushed: the alert is open again.
EVENT_OF_ACTION: dict[str, str] = {
    "raise": RAISED,
    "ack": UPDATED,
    "resolve": UPDATED,
    "auto_resolve": UPDATED,
    "reopen": UPDATED,
}
EMAIL_EVENTS = frozenset({RAISED, ESCALATED})


class ChannelIn(BaseModel):
    """A channel as `PUT /api/v1/notifications/{name}` takes it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook", "email"]
    url: str | None = Field(None, description="webhook: the http(s) URL that receives a POST per event")
    secret: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="webhook: the HMAC-SHA256 key of X-Kawal-Signature. Never returned. Required when the "
        "channel is created; left out when it is replaced, the stored secret is kept.",
    )
    to: list[Annotated[str, Field(max_length=254)]] | None = Field(
        None, max_length=100, description="email: the recipients"
    )
    types: list[AlertType] = Field(default_factory=list, description="alert types; empty means all")
    min_severity: Severity | None = Field(None, description="the least severe alert sent; null means all")
    kecamatan: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=1000,
        description="sub-districts: the alert's place, or else its trip's destination; empty means all",
    )
    escalate_after_min: float | None = Field(
        None, gt=0, le=10080, description="minutes after which a still-open alert is sent again as alert.escalated"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("url must be an http:// or https:// URL")
        return v

    @field_validator("to")
    @classmethod
    def _to(cls, v: list[str] | None) -> list[str] | None:
        for addr in v or []:
            if not _EMAIL.match(addr):
                raise ValueError(f"not an email address: {addr!r}")
        return v

    @model_validator(mode="after")
    def _kind_fields(self) -> ChannelIn:
        if self.kind == "webhook":
            if not self.url:
                raise ValueError("a webhook channel needs a url")
            if self.to:
                raise ValueError("`to` is for email channels")
        else:
            if not self.to:
                raise ValueError("an email channel needs at least one address in `to`")
            if self.url or self.secret:
                raise ValueError("`url` and `secret` are for webhook channels")
        return self


class Channel(ChannelIn):
    """A stored channel: its name and times, and the secret (kept out of every API answer)."""

    name: str
    created_at: float = 0.0
    updated_at: float = 0.0

    def matches(self, alert: dict[str, Any], destination: str | None) -> bool:
        """Does the alert (its JSON as a dict) pass the channel's filters?"""
        if self.types and alert.get("type") not in {str(t) for t in self.types}:
            return False
        if self.min_severity is not None:
            rank = SEVERITY_RANK.get(str(alert.get("severity")), 99)
            if rank > SEVERITY_RANK[str(self.min_severity)]:
                return False
        if self.kecamatan:
            return in_kecamatan(self.kecamatan, place_kecamatan(alert), destination)
        return True

    def wants(self, event: str) -> bool:
        return self.kind == "webhook" or event in EMAIL_EVENTS


def place_kecamatan(alert: dict[str, Any]) -> list[str] | None:
    """The names the alert's kecamatan goes by (its name, and its code as an extension), or None."""
    place = alert.get("place")
    if isinstance(place, dict) and isinstance(place.get("kecamatan"), str) and place["kecamatan"]:
        code = place.get("kecamatan_code")
        return [str(place["kecamatan"]), *([code] if isinstance(code, str) and code else [])]
    return None


def _words(s: str) -> list[str]:
    return re.findall(r"[0-9a-z]+", s.casefold())


def in_kecamatan(wanted: list[str], kecamatan: list[str] | None, destination: str | None) -> bool:
    """By the alert's place when it has one (its kecamatan's name or code, case-insensitive); otherwise by its
    trip's destination name, which holds the kecamatan's name as whole words (\"PPK Diwek\" is in Diwek)."""
    names = [_words(w) for w in wanted]
    if kecamatan is not None:
        return any(_words(k) in names for k in kecamatan)
    if not destination:
        return False
    dest = _words(destination)
    return any(n and any(dest[i : i + len(n)] == n for i in range(len(dest) - len(n) + 1)) for n in names)


class ChannelOut(BaseModel):
    """A channel as the API shows it: everything but the secret."""

    name: str
    kind: Literal["webhook", "email"]
    url: str | None = None
    to: list[str] | None = None
    types: list[AlertType]
    min_severity: Severity | None
    kecamatan: list[str]
    escalate_after_min: float | None
    has_secret: bool = Field(..., description="webhook: whether a secret is stored")
    created_at: str
    updated_at: str
    pending: int = Field(0, description="deliveries waiting to be sent (or retried)")


class DeliveryOut(BaseModel):
    """One event for one channel, and how its delivery went."""

    channel: str
    kind: str | None = Field(None, description="webhook or email (null when the channel was removed)")
    event_id: str
    event: str
    status: Literal["pending", "delivered"]
    attempts: int
    created_at: str
    next_at: str | None = Field(None, description="when the next attempt is due, while pending")
    delivered_at: str | None = None
    last_error: str | None = None
