"""The ops dashboard in a real browser: Debian's Chromium driven by Playwright, against `kawal serve` and a
real Mosquitto. Readings go in over MQTT exactly as trackers send them.

Every page is watched: a console error, an uncaught exception or a request to anything but 127.0.0.1 fails
the test. Screenshots land in artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from playwright.sync_api import Browser, Page, Request, ViewportSize, sync_playwright

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.servers import KawalServer, Mosquitto

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
DESKTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
WIB = timezone(timedelta(hours=7))

# A trip from the regency warehouse to the Diwek sub-district committee (PPK), as in CONTRACT 2.2.
ROUTE = [[-7.5460, 112.2330], [-7.5600, 112.2310], [-7.5700, 112.2340], [-7.5850, 112.2300]]
# Fixes along it, wobbling a little inside the corridor as a real GPS does.
TRACK = [(-7.5460, 112.2330), (-7.5510, 112.2326), (-7.5560, 112.2316), (-7.5600, 112.2312),
         (-7.5650, 112.2327)]


# ---------------------------------------------------------------------------------------------- the service


def call(
    srv: KawalServer, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{srv.base_url}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {token or srv.admin_token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def make_token(srv: KawalServer, name: str, role: str) -> str:
    status, body = call(srv, "POST", "/api/v1/tokens", {"name": name, "role": role})
    assert status == 201, body
    return str(body["token"])


def put_trip(srv: KawalServer, n: int, district: str, route: list[list[float]], depart: float) -> str:
    trip_id = f"T-{n:04d}"
    body = {
        "crate_id": f"JBG-KS-{n:04d}",
        "tracker_id": f"TRK-{n:04d}",
        "origin": {"name": "Gudang KPU Jombang", "lat": route[0][0], "lon": route[0][1], "radius_m": 150},
        "destination": {"name": f"PPK {district}", "lat": route[-1][0], "lon": route[-1][1], "radius_m": 150},
        "route": route,
        "depart_after": depart,
        "arrive_by": depart + 3 * 3600,
        "district": district,
    }
    status, out = call(srv, "PUT", f"/api/v1/trips/{trip_id}", body)
    assert status in (200, 201), out
    return trip_id


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Trackers:
    """Publishes readings the way trackers do: MQTT, QoS 1, one topic per tracker."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dashboard-test-trackers")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.seq: dict[str, int] = {}

    def send(self, tracker_id: str, ts: float | None = None, **reading: Any) -> None:
        seq = self.seq.get(tracker_id, 0)
        self.seq[tracker_id] = seq + 1
        payload = {"ts": time.time() if ts is None else ts, "seq": seq, **reading}
        info = self.client.publish(f"kawal/v1/{tracker_id}/telemetry", json.dumps(payload), qos=1)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Fleet:
    srv: KawalServer
    trackers: Trackers
    operator: str
    viewer: str


@pytest.fixture
def fleet(kawal_factory: Callable[..., KawalServer], mosquitto: Mosquitto) -> Iterator[Fleet]:
    """Kawal on a private broker, with a small fleet: crate 1 on its way to Diwek (the one the tests
    watch), and a few others in other states and sub-districts so the page has something to show."""
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url})
    now = time.time()
    warehouse = ROUTE[0]
    # Departures just before the first readings, so no trip has been silent long enough for signal_lost.
    put_trip(srv, 1, "Diwek", ROUTE, now - 660)
    put_trip(srv, 2, "Peterongan", [warehouse, [-7.5420, 112.2600], [-7.5400, 112.2900]], now - 660)
    put_trip(srv, 3, "Ploso", [warehouse, [-7.5000, 112.2310], [-7.4500, 112.2300]], now + 3600)
    put_trip(srv, 4, "Mojoagung", [warehouse, [-7.5600, 112.3000], [-7.5680, 112.3500]], now - 660)
    trackers = Trackers(mosquitto)
    for i, (lat, lon) in enumerate(TRACK):  # a fix a minute, the last one six minutes ago
        trackers.send("TRK-0001", ts=now - 600 + 60 * i, lat=lat, lon=lon, acc=6, spd=32, bat=88,
                      seal="closed")
    trackers.send("TRK-0002", ts=now - 600, lat=-7.5459, lon=112.2335, acc=8, spd=30, bat=72, seal="closed")
    trackers.send("TRK-0002", ts=now - 60, lat=-7.5425, lon=112.2650, acc=8, spd=40, bat=71, seal="closed")
    trackers.send("TRK-0003", ts=now - 60, lat=-7.5461, lon=112.2331, acc=12, bat=95, seal="closed")
    trackers.send("TRK-0004", ts=now - 600, lat=-7.5462, lon=112.2333, acc=5, spd=30, bat=65, seal="closed")
    trackers.send("TRK-0004", ts=now - 60, lat=-7.5679, lon=112.3499, acc=5, spd=0, bat=64, seal="closed")
    wait_until(
        lambda: len(srv.get("/api/v1/crates/JBG-KS-0001/track")["items"]) == len(TRACK)
        and srv.get("/api/v1/crates/JBG-KS-0004")["last_seen"],
        what="the seeded readings to be stored",
    )
    operator, viewer = make_token(srv, "ops-budi", "operator"), make_token(srv, "pengawas-sri", "viewer")
    yield Fleet(srv, trackers, operator, viewer)
    trackers.close()


# ---------------------------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Watched:
    """A page with every request URL, console error and uncaught exception recorded."""

    page: Page
    base_url: str
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self, allowed: tuple[str, ...] = ()) -> None:
        outside = [
            r.url for r in self.requests
            if urlparse(r.url).scheme not in ("data", "blob") and urlparse(r.url).hostname != "127.0.0.1"
        ]
        assert not outside, f"requests left 127.0.0.1: {outside}"
        errors = [e for e in self.errors if not any(a in e for a in allowed)]
        assert not errors, f"the page logged errors: {errors}"

    def login(self, token: str) -> None:
        self.page.goto(f"{self.base_url}/")
        self.page.fill("#login-token", token)
        self.page.click("#login-submit")
        self.page.locator("#conn[data-state=live]").wait_for(timeout=10_000)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Watched]]:
    contexts = []

    def make(base_url: str, viewport: ViewportSize = DESKTOP, mobile: bool = False) -> Watched:
        ctx = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile,
                                  device_scale_factor=2 if mobile else 1, locale="id-ID")
        contexts.append(ctx)
        page = ctx.new_page()
        w = Watched(page, base_url)
        page.on("request", lambda r: w.requests.append(r))
        page.on("console", lambda m: w.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: w.errors.append(f"pageerror: {e}"))
        return w

    yield make
    for ctx in contexts:
        ctx.close()


# ---------------------------------------------------------------------------------------------- the tests


def test_seal_break_appears_live_and_is_acknowledged_from_the_page(
    fleet: Fleet, open_page: Callable[..., Watched]
) -> None:
    w = open_page(fleet.srv.base_url)
    w.login(fleet.operator)
    page = w.page
    page.locator("#crate-list button[data-crate='JBG-KS-0001']").wait_for()
    page.evaluate(
        """() => {
            window.kawalTestMarker = 'same page';
            window.kawalFlashes = 0;
            document.getElementById('flash').addEventListener('animationstart', () => window.kawalFlashes++);
        }"""
    )
    card = page.locator("#alert-list li[data-type=seal_break][data-crate='JBG-KS-0001']")
    assert card.count() == 0

    # The seal is forced open mid-route: the card must show up by itself, within 2 s of the publish.
    start = time.monotonic()
    fleet.trackers.send("TRK-0001", lat=-7.5652, lon=112.2329, acc=6, spd=0, bat=87, seal="tampered")
    card.wait_for(timeout=2000)
    latency = time.monotonic() - start
    print(f"seal break on the board {latency * 1000:.0f} ms after the MQTT publish")
    assert page.evaluate("() => window.kawalTestMarker") == "same page", "the page reloaded"
    assert card.get_attribute("data-status") == "open"
    assert "sev-critical" in (card.get_attribute("class") or "")
    wait_until(lambda: page.evaluate("() => window.kawalFlashes") >= 1, what="the screen to flash")
    assert page.locator("#critical-banner").is_visible()
    alert_id = card.get_attribute("data-id")
    assert alert_id

    # Acknowledge it with a note; the API must show the new status and the note.
    card.locator(".btn-ack").click()
    page.fill("#action-note", "Polisi pengawal sudah dihubungi")
    page.click("#action-submit")
    def acknowledged() -> dict[str, Any] | None:
        alert = fleet.srv.get(f"/api/v1/alerts/{alert_id}")
        return alert if alert["status"] == "acknowledged" else None

    alert = wait_until(acknowledged, what="the alert to be acknowledged in the API")
    assert alert["history"][-1]["actor"] == "ops-budi"
    assert alert["history"][-1]["note"] == "Polisi pengawal sudah dihubungi"
    page.locator(f"#alert-list li[data-id='{alert_id}'][data-status=acknowledged]").wait_for(timeout=5000)
    assert card.locator(".btn-ack").count() == 0 and card.locator(".btn-resolve").count() == 1
    assert page.locator("#critical-banner").is_hidden()

    # Resolving needs a note: without one the page refuses and the API is not called.
    card.locator(".btn-resolve").click()
    page.click("#action-submit")
    page.locator("#action-error", has_text="Catatan wajib diisi").wait_for()
    assert fleet.srv.get(f"/api/v1/alerts/{alert_id}")["status"] == "acknowledged"
    page.click("#action-cancel")

    # Its crate, route and track, for the screenshot people look at.
    page.locator("#action-dialog").wait_for(state="hidden")
    card.click()
    page.locator("#map path.kawal-track").wait_for()
    page.locator("#crate-detail").get_by_text("T-0001").wait_for()
    page.locator("#flash:not(.on)").wait_for(state="attached", timeout=5000)
    page.wait_for_timeout(400)  # the map's zoom animation
    w.screenshot("dashboard-1366x768.png")
    w.assert_clean()


def test_selecting_a_crate_draws_its_route_and_track(fleet: Fleet, open_page: Callable[..., Watched]) -> None:
    # A warning from another crate, to see that a viewer gets no buttons for it.
    fleet.trackers.send("TRK-0002", lat=-7.5424, lon=112.2660, acc=8, spd=38, bat=9, seal="closed")
    # Crate 1's tracker skips two sequence numbers (a reading without a fix, so its track stays the same).
    fleet.trackers.seq["TRK-0001"] += 2
    fleet.trackers.send("TRK-0001", bat=88, seal="closed")
    wait_until(lambda: fleet.srv.get("/api/v1/crates/JBG-KS-0001")["seq_missing"] == 2, what="the seq gap counted")
    w = open_page(fleet.srv.base_url)
    w.login(fleet.viewer)
    page = w.page
    low = page.locator("#alert-list li[data-type=low_battery][data-crate='JBG-KS-0002']")
    low.wait_for(timeout=10_000)
    assert page.locator("#user-role").text_content() == "Pemantau"
    assert page.locator("#alert-list .btn-ack, #alert-list .btn-resolve").count() == 0

    # Filters: by sub-district, type and status.
    page.select_option("#f-district", "Diwek")
    page.locator("#alert-empty").wait_for()
    assert low.count() == 0
    page.select_option("#f-district", "Peterongan")
    low.wait_for()
    page.select_option("#f-type", "seal_break")
    page.locator("#alert-empty").wait_for()
    page.select_option("#f-type", "")
    page.select_option("#f-status", "resolved")
    page.locator("#alert-empty").wait_for()
    page.select_option("#f-status", "open")
    low.wait_for()
    page.select_option("#f-district", "")

    assert page.locator("#map path.kawal-route, #map path.kawal-track").count() == 0
    # No base map configured: the plain grid, and no tile requests at all.
    assert page.locator("#map .grid-tile").count() > 0
    assert page.locator("#map img.leaflet-tile").count() == 0
    page.click("#crate-list button[data-crate='JBG-KS-0001']")
    route = page.locator("#map path.kawal-route")
    track = page.locator("#map path.kawal-track")
    route.wait_for(timeout=10_000)
    track.wait_for(timeout=10_000)
    # Leaflet draws each line as one SVG path: one move and a line segment per further vertex. Until the map
    # has zoomed to the trip, Leaflet may merge vertices closer than a pixel; so poll.
    wait_until(lambda: _vertices(route.get_attribute("d")) == len(ROUTE), what="every route vertex drawn")
    wait_until(lambda: _vertices(track.get_attribute("d")) == len(TRACK), what="every track fix drawn")
    assert page.locator("#map path.kawal-origin").count() == 1
    assert page.locator("#map path.kawal-destination").count() == 1

    detail = page.locator("#crate-detail")
    detail.get_by_text("Gudang KPU Jombang", exact=True).wait_for()
    shown = detail.inner_text()
    for text in ("JBG-KS-0001", "T-0001", "TRK-0001", "Diwek", "PPK Diwek", "Gudang KPU Jombang", "88 %"):
        assert text in shown, text
    assert "Tertutup" in shown  # the seal, in Indonesian
    assert "Pembacaan tak pernah diterima" in shown and detail.locator(".crate-seq-missing").inner_text() == "2"

    # Another crate replaces the drawing; one route and one track at a time.
    page.click("#side [data-side=fleet]")
    page.click("#crate-list button[data-crate='JBG-KS-0002']")
    page.locator("#crate-detail h2", has_text="JBG-KS-0002").wait_for()
    page.locator("#crate-detail").get_by_text("T-0002").wait_for()
    new_route = page.locator("#map path.kawal-route")
    wait_until(lambda: _vertices(new_route.get_attribute("d")) == 3, what="the second crate's route")
    assert page.locator("#map path.kawal-route").count() == 1
    assert page.locator("#map path.kawal-track").count() == 1
    w.assert_clean()


def test_phone_layout(fleet: Fleet, open_page: Callable[..., Watched]) -> None:
    fleet.trackers.send("TRK-0001", lat=-7.5652, lon=112.2329, acc=6, spd=0, bat=87, seal="open")
    w = open_page(fleet.srv.base_url, PHONE, mobile=True)
    w.login(fleet.operator)
    page = w.page
    page.locator("#alert-list li[data-type=seal_break]").wait_for(timeout=10_000)
    assert page.locator("#tabs").is_visible()
    assert not page.locator("#map").is_visible()  # one view at a time on a phone
    _assert_fits(page)
    w.screenshot("dashboard-phone-alerts.png")

    page.click("#tabs [data-view=fleet]")
    page.locator("#district-table tbody tr[data-district='Diwek']").wait_for()
    _assert_fits(page)
    w.screenshot("dashboard-phone-fleet.png")

    page.click("#crate-list button[data-crate='JBG-KS-0001']")
    page.locator("#crate-detail").get_by_text("T-0001").wait_for(timeout=10_000)
    _assert_fits(page)
    w.screenshot("dashboard-phone-crate.png")

    page.click("#tabs [data-view=map]")
    page.locator("#map path.kawal-track").wait_for()
    assert page.locator("#map").is_visible()
    page.wait_for_timeout(300)
    w.screenshot("dashboard-phone-map.png")
    w.assert_clean()


def test_login_language_and_wib(fleet: Fleet, open_page: Callable[..., Watched]) -> None:
    w = open_page(fleet.srv.base_url)
    page = w.page
    page.goto(f"{fleet.srv.base_url}/")
    assert page.locator("#login h1").inner_text() == "Masuk ke Kawal"  # Indonesian by default

    page.fill("#login-token", "kwl_not-a-token")
    page.click("#login-submit")
    page.locator("#login-error", has_text="Token tidak dikenal").wait_for()
    assert page.locator("#app").is_hidden()

    w.login(fleet.viewer)
    # The token is kept for this tab's session only.
    assert page.evaluate("() => sessionStorage.getItem('kawal.token')") == fleet.viewer
    assert fleet.viewer not in page.evaluate("() => JSON.stringify(localStorage)")

    # The clock shows Jakarta time (WIB) whatever the browser's own zone.
    clock = page.locator("#clock").inner_text()
    assert clock.endswith(" WIB")
    shown = datetime.strptime(clock.split()[0].replace(".", ":"), "%H:%M:%S").time()
    now_wib = datetime.now(UTC).astimezone(WIB)
    delta = abs((now_wib.hour * 3600 + now_wib.minute * 60 + now_wib.second)
                - (shown.hour * 3600 + shown.minute * 60 + shown.second))
    assert min(delta, 86400 - delta) <= 5, (clock, now_wib)

    assert page.locator("#board-title").inner_text() == "Papan peringatan"
    page.click("#app .js-lang")
    page.locator("#board-title", has_text="Alert board").wait_for()
    page.locator("#state-chips [data-state=in_transit]", has_text="In transit").wait_for()
    assert page.locator("html").get_attribute("lang") == "en"
    page.click("#app .js-lang")
    page.locator("#board-title", has_text="Papan peringatan").wait_for()

    # A reload keeps the session; signing out ends it.
    page.reload()
    page.locator("#conn[data-state=live]").wait_for(timeout=10_000)
    page.click("#logout")
    page.locator("#login-form").wait_for()
    assert page.evaluate("() => sessionStorage.getItem('kawal.token')") is None
    w.assert_clean(allowed=("401",))  # the wrong token's own 401


def test_event_stream_parser_in_the_browser(fleet: Fleet, open_page: Callable[..., Watched]) -> None:
    """The page parses text/event-stream itself (EventSource cannot send a token): chunk boundaries
    anywhere, CRLF split over two chunks, comments, multi-line data, ids and retry."""
    w = open_page(fleet.srv.base_url)
    w.page.goto(f"{fleet.srv.base_url}/")
    result = w.page.evaluate(
        """async () => {
            const { EventStreamParser } = await import('/static/dashboard/api.js');
            const events = [], retries = [];
            const p = new EventStreamParser((e) => events.push(e), (ms) => retries.push(ms));
            const chunks = [': ping\\r', '\\nid: 7\\r', '\\ndata: {"a"', ':1}\\r\\n\\r\\n',
                            'retry: 2500\\nevent: x\\n', 'data: l1\\ndata:l2\\n\\n', 'id: 9\\n\\n',
                            'data: tail'];
            for (const c of chunks) p.push(c);
            return { events, retries };
        }"""
    )
    assert result["events"] == [
        {"event": "message", "id": "7", "data": '{"a":1}'},
        {"event": "x", "id": None, "data": "l1\nl2"},  # no id of its own: the last one stays
        {"event": "message", "id": "9"},
    ]
    assert result["retries"] == [2500]
    w.assert_clean()


def test_stream_reconnects_with_last_event_id(fleet: Fleet, open_page: Callable[..., Watched]) -> None:
    w = open_page(fleet.srv.base_url)
    w.login(fleet.operator)
    page = w.page
    fleet.trackers.send("TRK-0002", lat=-7.5424, lon=112.2660, acc=8, spd=38, bat=9, seal="closed")
    page.locator("#alert-list li[data-type=low_battery]").wait_for(timeout=10_000)

    fleet.srv.stop()
    page.locator("#conn[data-state=reconnecting]").wait_for(timeout=10_000)
    fleet.srv.start()
    page.locator("#conn[data-state=live]").wait_for(timeout=30_000)
    fleet.trackers.send("TRK-0001", lat=-7.5652, lon=112.2329, acc=6, spd=0, bat=87, seal="open")
    page.locator("#alert-list li[data-type=seal_break]").wait_for(timeout=10_000)

    streams = [r for r in w.requests if r.url.endswith("/api/v1/alerts/stream")]
    assert len(streams) >= 2
    assert "last-event-id" not in streams[0].headers
    assert int(streams[-1].headers["last-event-id"]) >= 1
    # The stream cut off mid-response and the refused reconnections are logged by the browser; nothing else.
    w.assert_clean(allowed=("ERR_INCOMPLETE_CHUNKED_ENCODING", "ERR_CONNECTION_REFUSED",
                            "ERR_EMPTY_RESPONSE"))


def test_base_map_tiles_only_when_configured(
    kawal_factory: Callable[..., KawalServer], mosquitto: Mosquitto, open_page: Callable[..., Watched]
) -> None:
    # A "tile server" on 127.0.0.1: any PNG will do, so Leaflet's own icon stands in for the tiles.
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url}, start=False)
    srv.env["KAWAL_TILE_URL"] = f"{srv.base_url}/static/leaflet/images/layers.png?z={{z}}&x={{x}}&y={{y}}"
    srv.start()
    w = open_page(srv.base_url)
    w.login(srv.admin_token)
    w.page.locator("#map img.leaflet-tile-loaded").first.wait_for(timeout=10_000)
    assert any("layers.png?z=" in r.url for r in w.requests)
    assert w.page.locator("#map .grid-tile").count() == 0
    w.assert_clean()


def _vertices(d: str | None) -> int:
    """Vertices of a Leaflet polyline path ("M x y L x y L x y ...")."""
    assert d
    return d.count("M") + d.count("L")


def _assert_fits(page: Page) -> None:
    """Nothing is wider than the screen: no sideways scrolling on a phone."""
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
