"""The dashboard's offline map in Chromium: with no tile URL and every request that leaves 127.0.0.1 aborted,
the kecamatan and desa boundaries are the base map, the selected crate's village is named, the choropleth
shades the kecamatan with open alerts, and alerts carry their place. Screenshots go to artifacts/."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from playwright.sync_api import Page, Route

from tests import test_dashboard as dashboard
from tests.test_dashboard import ARTIFACTS, Fleet, Watched, wait_until

# The dashboard tests' fixtures: Chromium, a page watched for errors, Kawal with a small fleet.
browser, open_page, fleet = dashboard.browser, dashboard.open_page, dashboard.fleet

# The last fix of crate 1 (tests/test_dashboard.py TRACK) lies in desa Plandi, kecamatan Jombang.
CRATE_1_DESA, CRATE_1_KECAMATAN = "Plandi", "Jombang"


def _offline(page: Page) -> list[str]:
    """Abort every request that is not to 127.0.0.1 (as on a network with no Internet); return their URLs."""
    blocked: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        if urlparse(url).scheme in ("data", "blob") or urlparse(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", handle)
    return blocked


def _painted(page: Page) -> int:
    """Pixels drawn on the boundaries' canvas."""
    return int(
        page.evaluate(
            """() => {
                const c = document.querySelector('#map .leaflet-boundary-pane canvas');
                if (!c || !c.width) return 0;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
                return n;
            }"""
        )
    )


def test_offline_map_names_kecamatan_and_the_crates_village(fleet: Fleet, open_page: Callable[..., Watched]) -> None:
    assert fleet.srv.get("/api/v1/crates/JBG-KS-0001")["place"]["desa"] == CRATE_1_DESA
    w = open_page(fleet.srv.base_url)
    blocked = _offline(w.page)
    w.login(fleet.operator)
    page = w.page

    # The regency's 21 kecamatan, named, drawn on the canvas under the crates; no tile at all.
    labels = page.locator("#map .kec-label span")
    wait_until(lambda: labels.count() == 21, what="the 21 kecamatan names")
    assert "Diwek" in labels.all_text_contents()
    wait_until(lambda: _painted(page) > 10_000, what="the boundaries drawn")
    assert page.locator("#map img.leaflet-tile").count() == 0
    assert "wilayah_boundaries" in page.locator("#map .leaflet-control-attribution").inner_text()
    page.wait_for_timeout(300)
    w.screenshot("dashboard-offline-regency.png")

    # A seal break in Peterongan: the alert names its place and the kecamatan is shaded and counted.
    fleet.trackers.send("TRK-0002", lat=-7.5425, lon=112.2650, acc=8, spd=0, bat=70, seal="tampered")
    card = page.locator("#alert-list li[data-type=seal_break][data-crate='JBG-KS-0002']")
    card.wait_for(timeout=10_000)
    alert = fleet.srv.get(f"/api/v1/alerts/{card.get_attribute('data-id')}")
    place = alert["place"]
    assert place and place["kecamatan"] == "Peterongan"
    assert f"Desa {place['desa']}, Kec. Peterongan" in card.inner_text()
    peterongan = page.locator("#map .kec-label span", has_text="Peterongan")
    peterongan.and_(page.locator(".has-alerts")).wait_for(timeout=20_000)  # the next summary refresh
    assert peterongan.text_content() == "Peterongan · 1"
    # The board filters by where the alert happened.
    page.select_option("#f-kecamatan", "Diwek")
    page.locator("#alert-empty").wait_for()
    page.select_option("#f-kecamatan", "Peterongan")
    card.wait_for()
    page.select_option("#f-kecamatan", "")
    # The fleet panel counts crates by where they are and open alerts by place; a row filters the board.
    row = page.locator("#place-table tr[data-kecamatan=Peterongan]")
    row.wait_for()
    assert row.locator("td").all_text_contents() == ["Peterongan", "1", "1"]
    row.click()
    assert page.locator("#f-kecamatan").input_value() == "Peterongan"
    row.click()
    assert page.locator("#f-kecamatan").input_value() == ""

    # Crate 1: its village is outlined and named on the map, and named in the detail.
    page.click("#crate-list button[data-crate='JBG-KS-0001']")
    page.locator("#map path.kawal-track").wait_for(timeout=10_000)
    village = page.locator("#map .desa-label span.selected")
    village.wait_for(timeout=10_000)
    assert village.inner_text() == CRATE_1_DESA
    assert page.locator("#crate-detail .crate-place").inner_text() == f"Desa {CRATE_1_DESA}, Kec. {CRATE_1_KECAMATAN}"
    page.wait_for_timeout(500)  # the zoom animation
    assert page.locator("#map .desa-label span:not([hidden])").count() > 1  # zoomed in: the neighbours too
    w.screenshot("dashboard-offline-crate-village.png")
    print(f"screenshots in {ARTIFACTS}")
    assert blocked == [], f"the page tried to leave 127.0.0.1: {blocked}"
    w.assert_clean()
