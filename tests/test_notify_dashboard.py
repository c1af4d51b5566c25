"""The dashboard shows, per alert, where it was sent and whether delivery succeeded (Chromium, real service)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import sync_playwright

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.notify_helpers import FAST, Receiver, call, seal_break, trip_body
from tests.servers import KawalServer, Mosquitto, wait_for
from tests.test_dashboard import DESKTOP


@pytest.mark.slow
def test_crate_detail_shows_each_alerts_deliveries(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer]
) -> None:
    chromium = chromium_path()
    up, down = Receiver().start(), Receiver()  # `down` is never started: its deliveries keep failing
    try:
        srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, **FAST})
        for name, r in (("pengawas", up), ("mati", down)):
            body = {"kind": "webhook", "url": r.url, "secret": "x"}
            assert call(srv, "PUT", f"/api/v1/notifications/{name}", body)[0] == 200
        assert call(srv, "PUT", "/api/v1/trips/T-W", trip_body("TRK-W", "JBG-KS-0042", "PPK Diwek"))[0] in (200, 201)
        seal_break(mosquitto.port, "TRK-W", -7.5952, 112.2344)
        wait_for(lambda: len(up.events()) == 1, timeout=30, what="the delivery to the live receiver")
        (alert,) = srv.get("/api/v1/alerts")["items"]
        wait_for(
            lambda: any(
                d["attempts"] > 0
                for d in call(srv, "GET", f"/api/v1/alerts/{alert['id']}/deliveries")[1]["items"]
                if d["channel"] == "mati"
            ),
            timeout=30,
            what="a failed attempt to the dead receiver",
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=DESKTOP, locale="id-ID").new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{srv.base_url}/#alert={alert['id']}")  # the link in notifications
            page.fill("#login-token", srv.admin_token)
            page.click("#login-submit")
            page.locator("#conn[data-state=live]").wait_for(timeout=10_000)
            # The link opens the alert's crate by itself.
            page.locator("#crate-detail h2", has_text="JBG-KS-0042").wait_for(timeout=10_000)
            line = page.locator(f"#crate-detail [data-deliveries-for='{alert['id']}']")
            line.locator(".delivery-chip[data-channel=pengawas][data-state=ok]").wait_for(timeout=10_000)
            failed = line.locator(".delivery-chip[data-channel=mati][data-state=failed]")
            failed.wait_for(timeout=10_000)
            assert "Dikirim ke:" in line.inner_text() and "terkirim" in line.inner_text()
            assert "gagal" in (failed.text_content() or "")
            assert not errors, errors
            browser.close()
    finally:
        up.stop()
