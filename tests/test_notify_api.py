"""The channels API (CONTRACT 2.7): validation with reasons, the secret never returned, replace and remove."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api_harness import running_api

HOOK = {"kind": "webhook", "url": "https://bridge.example.org/kawal", "secret": "rahasia"}


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"kind": "webhook", "secret": "s"}, "needs a url"),
    ({"kind": "webhook", "url": "ftp://x/", "secret": "s"}, "http:// or https://"),
    ({"kind": "webhook", "url": "https://x/"}, "needs a secret"),
    ({"kind": "email"}, "at least one address"),
    ({"kind": "email", "to": ["a@b.example"], "url": "https://x/"}, "for webhook channels"),
    ({"kind": "email", "to": ["nobody"]}, "not an email address"),
    ({**HOOK, "types": ["seal_broken"]}, "seal_break"),
    ({**HOOK, "min_severity": "urgent"}, "critical"),
    ({**HOOK, "escalate_after_min": 0}, "greater than 0"),
    ({**HOOK, "colour": "red"}, "Extra inputs"),
    ({"kind": "sms", "to": ["+62"]}, "webhook"),
]


def test_invalid_channels_get_422_with_the_reason(tmp_path: Path) -> None:
    with running_api(tmp_path) as (h, client):
        for body, reason in INVALID:
            r = client.put("/api/v1/notifications/bad", json=body, headers=h.headers("admin"))
            assert r.status_code == 422, (body, r.text)
            assert reason in r.text, (body, r.text)
        assert client.put("/api/v1/notifications/bad name", json=HOOK, headers=h.headers("admin")).status_code == 422
        assert client.get("/api/v1/notifications", headers=h.headers("admin")).json() == {"items": []}


def test_create_replace_list_remove(tmp_path: Path) -> None:
    with running_api(tmp_path) as (h, client):
        admin = h.headers("admin")
        r = client.put("/api/v1/notifications/piket", json={**HOOK, "kecamatan": ["Diwek"]}, headers=admin)
        assert r.status_code == 200, r.text
        shown = r.json()
        assert "rahasia" not in r.text and shown["has_secret"] is True and shown["pending"] == 0
        assert shown["kecamatan"] == ["Diwek"] and shown["types"] == [] and shown["min_severity"] is None
        # Replaced without a secret: the stored one is kept (a GET, edit, PUT round trip works).
        edited = {k: v for k, v in shown.items() if k in ("kind", "url", "types", "kecamatan")}
        r = client.put("/api/v1/notifications/piket", json={**edited, "escalate_after_min": 7.5}, headers=admin)
        assert (
            r.status_code == 200
            and r.json()["escalate_after_min"] == 7.5
            and r.json()["created_at"] == shown["created_at"]
        )
        (stored,) = [c for c in h.ctx.db.conn().execute("SELECT body FROM notify_channels")]
        assert '"secret":"rahasia"' in stored[0]
        email = {"kind": "email", "to": ["ketua@example.org"], "types": ["seal_break"], "min_severity": "major"}
        assert client.put("/api/v1/notifications/ketua", json=email, headers=admin).status_code == 200
        listed = client.get("/api/v1/notifications", headers=admin).json()["items"]
        assert [(c["name"], c["kind"]) for c in listed] == [("ketua", "email"), ("piket", "webhook")]
        assert "rahasia" not in client.get("/api/v1/notifications/piket", headers=admin).text
        assert client.delete("/api/v1/notifications/piket", headers=admin).status_code == 204
        assert client.delete("/api/v1/notifications/piket", headers=admin).status_code == 404
        assert client.get("/api/v1/notifications/piket", headers=admin).status_code == 404
        # Who changed what is in the audit log, without the secret.
        audit = client.get("/api/v1/audit", headers=admin).text
        assert "notify.channel_put" in audit and "notify.channel_delete" in audit and "rahasia" not in audit
        assert client.get("/api/v1/alerts/NOPE/deliveries", headers=h.headers("viewer")).json() == {"items": []}
