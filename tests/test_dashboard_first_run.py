"""The dashboard's details a first-time viewer meets, in Chromium: one clock (the service's) for every age on a
replayed or simulated day, how late an overdue crate is, labelled origin and destination rings in the legend,
buttons that look like buttons, phone tabs that fit, and a scale bar that hides no marker."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page

from tests import test_dashboard as dashboard
from tests.servers import KawalServer, Mosquitto
from tests.test_dashboard import PHONE, ROUTE, TRACK, Fleet, Trackers, Watched, make_token, put_trip, wait_until

# The dashboard tests' fixtures: Chromium, a page watched for errors.
browser, open_page = dashboard.browser, dashboard.open_page

# Yesterday morning: a replayed day, far from the browser's clock.
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0).timestamp()
LATE_MIN = 20


@pytest.fixture
def replay(kawal_factory: Callable[..., KawalServer], mosquitto: Mosquitto) -> Iterator[Fleet]:
    """Kawal on the event clock, fed yesterday's readings: crate 1 still on the road LATE_MIN minutes after
    its arrive_by (overdue), crate 2 with a broken seal."""
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, "KAWAL_CLOCK": "event"})
    put_trip(srv, 1, "Diwek", ROUTE, T0)  # arrive_by = T0 + 3 h
    put_trip(srv, 2, "Peterongan", [ROUTE[0], [-7.5420, 112.2600], [-7.5400, 112.2900]], T0)
    trackers = Trackers(mosquitto)
    arrive_by = T0 + 3 * 3600
    # A fix every 8 minutes (no silence long enough for signal_lost), the last LATE_MIN after arrive_by.
    times = [arrive_by - 3 * 3600 + 60 + 8 * 60 * i for i in range(23)] + [arrive_by + LATE_MIN * 60]
    for i, ts in enumerate(times):
        lat, lon = TRACK[min(i * len(TRACK) // len(times), len(TRACK) - 1)]
        trackers.send("TRK-0001", ts=ts, lat=lat, lon=lon, acc=6, spd=25, bat=80, seal="closed")
    trackers.send(
        "TRK-0002", ts=arrive_by + LATE_MIN * 60 - 120, lat=-7.5425, lon=112.2650, acc=8, spd=0, bat=70, seal="tampered"
    )
    overdue = {"type": "overdue", "crate_id": "JBG-KS-0001"}
    wait_until(lambda: len(srv.get("/api/v1/alerts", **overdue)["items"]) == 1, 20, "the overdue alert")
    wait_until(lambda: len(srv.get("/api/v1/alerts", type="seal_break")["items"]) == 1, 20, "the seal break")
    yield Fleet(srv, trackers, make_token(srv, "ops-budi", "operator"), make_token(srv, "pengawas-sri", "viewer"))
    trackers.close()


def _minutes(text: str) -> int | None:
    m = re.search(r"(\d+) mnt", text)
    return int(m.group(1)) if m else None


def test_first_run_details(replay: Fleet, open_page: Callable[..., Watched]) -> None:
    """One Kawal on a replayed day for all of them: one clock, the overdue card, rings, buttons, phone tabs."""
    w = open_page(replay.srv.base_url)
    w.login(replay.operator)
    page = w.page
    overdue = page.locator("#alert-list li[data-type=overdue][data-crate='JBG-KS-0001']")
    overdue.wait_for(timeout=10_000)
    # How late, on the service's clock (the latest reading), not the browser's (a day later).
    details = overdue.locator(".alert-details")
    wait_until(lambda: "terlambat" in details.inner_text(), 10, "the lateness on the overdue card")
    assert _minutes(details.inner_text()) == LATE_MIN, details.inner_text()
    # Ages on the cards use the same clock: the seal broke two simulated minutes ago, not "a day ago".
    seal_age = page.locator("#alert-list li[data-type=seal_break] .alert-age").inner_text()
    assert seal_age in ("2 mnt lalu", "2 menit lalu"), seal_age
    assert _minutes(overdue.locator(".alert-age").inner_text()) == LATE_MIN
    # The crate detail: last seen just now, not "17 hours ago".
    overdue.click()
    last_seen = page.locator("#crate-detail .kv", has_text="Terakhir terlihat")
    last_seen.wait_for(timeout=10_000)
    assert "jam" not in last_seen.inner_text() and "hari" not in last_seen.inner_text(), last_seen.inner_text()
    assert "sekarang" in last_seen.inner_text() or "dtk lalu" in last_seen.inner_text(), last_seen.inner_text()
    # The header clock is the service's too: yesterday's replayed time, with a tooltip saying so.
    clock = page.locator("#clock")
    wait_until(lambda: "simulasi" in (clock.get_attribute("title") or ""), 5, "the header clock's tooltip")
    shown = datetime.fromisoformat((clock.get_attribute("datetime") or "").replace("Z", "+00:00")).timestamp()
    assert abs(shown - (T0 + 3 * 3600 + LATE_MIN * 60)) < 60
    w.screenshot("dashboard-replay-overdue.png")
    w.assert_clean()

    _rings_buttons_and_scale_bar(replay, open_page)
    _phone_tabs_are_not_clipped(replay, open_page)


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return {"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"]}


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _rings_buttons_and_scale_bar(replay: Fleet, open_page: Callable[..., Watched]) -> None:
    w = open_page(replay.srv.base_url)
    w.login(replay.viewer)
    page = w.page
    page.click("#crate-list button[data-crate='JBG-KS-0001']")
    page.locator("#map path.kawal-track").wait_for(timeout=10_000)
    # The rings say what they are, on the map and in the legend.
    origin = page.locator("#map .zone-label-origin")
    destination = page.locator("#map .zone-label-destination")
    origin.wait_for()
    assert origin.inner_text() == "Asal: Gudang KPU Jombang"
    assert destination.inner_text() == "Tujuan: PPK Diwek"
    assert page.locator("#map .legend-row", has=page.locator(".legend-origin")).inner_text() == "Asal"
    assert page.locator("#map .legend-row", has=page.locator(".legend-destination")).inner_text() == "Tujuan"
    # "Show whole route" and "Close" look like buttons: a visible background and border.
    for name in ("Tampilkan seluruh rute", "Tutup"):
        style = page.get_by_role("button", name=name, exact=True).evaluate(
            "b => { const s = getComputedStyle(b); return [s.backgroundColor, s.borderTopColor]; }"
        )
        assert all(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in style), (name, style)
    # Fitted to the trip, nothing of it lies under the scale bar, which lets clicks through anyway.
    page.get_by_role("button", name="Tampilkan seluruh rute", exact=True).click()
    page.wait_for_timeout(600)  # the zoom animation
    scale = _box(page, "#map .leaflet-control-scale")
    legend = _box(page, "#map .map-legend")  # open on a desktop screen
    for sel in (
        "#map path.kawal-origin",
        "#map path.kawal-destination",
        "#map path.kawal-track",
        "#map .zone-label-origin",
        "#map .zone-label-destination",
    ):
        assert not _overlap(scale, _box(page, sel)), f"the scale bar covers {sel}"
        assert not _overlap(legend, _box(page, sel)), f"the legend covers {sel}"
    assert page.locator("#map .leaflet-control-scale").evaluate("e => getComputedStyle(e).pointerEvents") == "none"
    w.screenshot("dashboard-rings.png")
    w.assert_clean()


def _phone_tabs_are_not_clipped(replay: Fleet, open_page: Callable[..., Watched]) -> None:
    w = open_page(replay.srv.base_url, PHONE, mobile=True)
    w.login(replay.viewer)
    page = w.page
    page.locator("#alert-list li[data-type=seal_break]").wait_for(timeout=10_000)
    width = PHONE["width"]
    for tab in page.locator("#tabs button").all():
        box = tab.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (tab.inner_text(), box)
        clipped = tab.evaluate("b => b.scrollWidth - b.clientWidth")
        assert clipped <= 0, (tab.inner_text(), clipped)
    w.screenshot("dashboard-phone-tabs.png")
    w.assert_clean()
