"""A whole chain of custody on the running service: warehouse → PPK → PPS → TPS and back after counting,
a handover at each level, the custody listing, and the receipt printed to PDF by Chromium."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from playwright.sync_api import sync_playwright
from pypdf import PdfReader

from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.servers import KawalServer, Mosquitto, wait_for

pytestmark = pytest.mark.slow

T0 = 1_732_060_800.0  # 2024-11-20T00:00:00Z
PLACES = {
    "Gudang KPU Jombang": (-7.5460, 112.2330),
    "PPK Diwek": (-7.5850, 112.2300),
    "PPS Ceweng": (-7.6000, 112.2400),
    "TPS 03 Ceweng": (-7.6100, 112.2450),
}
OUT = ["Gudang KPU Jombang", "PPK Diwek", "PPS Ceweng", "TPS 03 Ceweng"]
ROLES = {"PPK Diwek": "PPK", "PPS Ceweng": "PPS", "TPS 03 Ceweng": "KPPS", "Gudang KPU Jombang": "KPU"}
SEALS_OUT = ["KPU-3517-0001234", "KPU-3517-0001235"]
SEALS_BACK = ["KPPS-3517-0042-01", "KPPS-3517-0042-02"]  # the reseal after counting


def _legs() -> list[dict[str, Any]]:
    """Six legs: three out, three back, each two hours after the last."""
    stops = [*OUT, *reversed(OUT[:-1])]
    legs = []
    for i in range(len(stops) - 1):
        a, b = stops[i], stops[i + 1]
        back = i >= len(OUT) - 1
        (alat, alon), (blat, blon) = PLACES[a], PLACES[b]
        legs.append(
            {
                "trip_id": f"C1-L{i + 1}",
                "crate_id": "C-1",
                "tracker_id": "TRK-C1",
                "origin": {"name": a, "lat": alat, "lon": alon, "radius_m": 150},
                "destination": {"name": b, "lat": blat, "lon": blon, "radius_m": 150, "kecamatan": "Diwek"},
                "route": [[alat, alon], [(alat + blat) / 2, (alon + blon) / 2], [blat, blon]],
                "depart_after": T0 + i * 7200,
                "arrive_by": T0 + i * 7200 + 5400,
                "seals": SEALS_BACK if back else SEALS_OUT,
                "previous_trip_id": f"C1-L{i}" if i else None,
                "direction": "return" if back else "outbound",
            }
        )
    return legs


@pytest.fixture
def service(
    mosquitto: Mosquitto, kawal_factory: Callable[..., KawalServer]
) -> Iterator[tuple[KawalServer, httpx.Client]]:
    srv = kawal_factory(env={"KAWAL_MQTT_URL": mosquitto.url, "KAWAL_CLOCK": "event"})
    with httpx.Client(base_url=srv.base_url, headers=srv.headers, timeout=30) as client:
        yield srv, client


def _drive(pub: mqtt.Client, leg: dict[str, Any], seq0: int) -> int:
    """Fixes every minute from origin to destination over 20 minutes, then 5 minutes at rest there."""
    (alat, alon), (blat, blon) = (
        (leg["origin"]["lat"], leg["origin"]["lon"]),
        (
            leg["destination"]["lat"],
            leg["destination"]["lon"],
        ),
    )
    batch = []
    for k in range(26):
        f = min(1.0, k / 20)
        batch.append(
            {
                "ts": leg["depart_after"] + 60 + k * 60,
                "seq": seq0 + k,
                "lat": alat + (blat - alat) * f,
                "lon": alon + (blon - alon) * f,
                "acc": 8,
                "seal": "closed",
                "bat": 90,
            }
        )
    pub.publish("kawal/v1/TRK-C1/telemetry", json.dumps(batch), qos=1).wait_for_publish(10)
    return seq0 + len(batch)


def test_full_chain_custody_and_printed_receipt(service: tuple[KawalServer, httpx.Client], tmp_path: Path) -> None:
    srv, client = service
    legs = _legs()
    for leg in legs:
        body = {k: v for k, v in leg.items() if k != "trip_id"}
        r = client.put(f"/api/v1/trips/{leg['trip_id']}", json=body)
        assert r.status_code == 200, r.text
    op = client.post("/api/v1/tokens", json={"name": "petugas-ppk", "role": "operator"}).json()["token"]
    ops = {"Authorization": f"Bearer {op}"}
    port = int(srv.env["KAWAL_MQTT_URL"].rsplit(":", 1)[1])
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-custody")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    seq = 0
    handovers = []
    try:
        for i, leg in enumerate(legs):
            seq = want = _drive(pub, leg, seq)
            wait_for(
                lambda want=want: len(client.get("/api/v1/crates/C-1/track").json()["items"]) == want,  # type: ignore[misc]
                timeout=30,
                what=f"leg {i + 1}'s fixes",
            )
            last_leg = i == len(legs) - 1
            seals = ["KPPS-3517-0042-01", "KPPS-3517-0099-99"] if last_leg else leg["seals"]
            dest = leg["destination"]["name"]
            body = {
                "receiver": {"name": f"Petugas {ROLES[dest]}", "role": ROLES[dest]},
                "seals": seals,
                "at": leg["depart_after"] + 60 + 26 * 60,
            }
            r = client.post(f"/api/v1/trips/{leg['trip_id']}/handover", json=body, headers=ops)
            assert r.status_code == 201, r.text
            handovers.append(r.json())
    finally:
        pub.loop_stop()
        pub.disconnect()
    assert all(h["in_destination"] for h in handovers)
    assert [h["seals_match"] for h in handovers] == [True] * 5 + [False]
    assert client.post("/api/v1/trips/C1-L3/handover", json=body, headers=ops).status_code == 409

    # Exactly one handover_mismatch: the wrong seal read at the warehouse; an operator resolves it.
    mismatches = client.get("/api/v1/alerts", params={"type": "handover_mismatch"}).json()["items"]
    assert [(a["trip_id"], a["details"]["unexpected_seals"]) for a in mismatches] == [("C1-L6", ["KPPS-3517-0099-99"])]
    note = "segel kedua diganti di gudang, berita acara 12/2024"
    r = client.post(f"/api/v1/alerts/{mismatches[0]['id']}/resolve", json={"note": note}, headers=ops)
    assert r.status_code == 200

    custody = client.get("/api/v1/crates/C-1/custody").json()["items"]
    assert [leg["trip"]["trip_id"] for leg in custody] == [leg["trip_id"] for leg in legs]
    assert [leg["trip"]["direction"] for leg in custody] == ["outbound"] * 3 + ["return"] * 3
    assert [leg["handover"]["id"] for leg in custody] == [h["id"] for h in handovers]
    assert all(leg["flags"] == [] for leg in custody)  # the reseal at the TPS came after a handover
    assert custody[0]["seal_events"][0]["seal"] == "closed"
    assert [a["type"] for a in custody[-1]["alerts"] if a["type"] == "handover_mismatch"] == ["handover_mismatch"]
    assert all(leg["trip"]["handover_at"] for leg in custody)

    # The receipt prints to PDF in Chromium with no console error; the PDF holds the seals and the hashes.
    chromium = chromium_path()
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {srv.admin_token}"})
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            response = page.goto(f"{srv.base_url}/api/v1/crates/C-1/receipt")
            assert response is not None and response.status == 200
            assert page.locator("svg polyline.actual").count() == len(legs)
            pdf = page.pdf(format="A4", print_background=True)
            # The dashboard's crate detail shows the same chain as a timeline.
            dash = browser.new_context(viewport={"width": 1400, "height": 900}, locale="id-ID").new_page()
            dash.on("pageerror", lambda e: errors.append(str(e)))
            dash.goto(f"{srv.base_url}/")
            dash.fill("#login-token", srv.admin_token)
            dash.click("#login-submit")
            dash.locator("#crate-list button[data-crate='C-1']").click()
            timeline = dash.locator("#crate-detail [data-custody-for='C-1']")
            timeline.locator(".custody-leg").nth(len(legs) - 1).wait_for(timeout=15_000)
            assert timeline.locator(".custody-leg").count() == len(legs)
            states = [timeline.locator(".custody-leg").nth(i).get_attribute("data-state") for i in range(len(legs))]
            assert states == ["ok"] * 5 + ["mismatch"]
            text = timeline.inner_text()
            assert "RANTAI PENGUASAAN" in text.upper() and "segel tidak cocok" in text and "kembali" in text
        finally:
            browser.close()
    assert errors == []
    (tmp_path / "receipt.pdf").write_bytes(pdf)
    text = "".join(page_.extract_text() for page_ in PdfReader(io.BytesIO(pdf)).pages)
    flat = re.sub(r"\s+", "", text)
    for seal in [*SEALS_OUT, *SEALS_BACK, "KPPS-3517-0099-99"]:
        assert seal in flat, seal
    for h in handovers:
        assert h["audit_hash"] in flat, h["audit_hash"]
    assert re.sub(r"\s+", "", note) in flat  # the alert's resolution
    # ... and a hash on the receipt stands in the unbroken chain.
    env = {**os.environ, "KAWAL_DB": str(srv.workdir / "kawal.db")}
    verify = subprocess.run(
        [sys.executable, "-m", "kawal", "audit", "verify", "--hash", handovers[2]["audit_hash"]],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert f"hash {handovers[2]['audit_hash']} is record {handovers[2]['audit_seq']}" in verify.stdout
