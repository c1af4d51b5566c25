"""The dashboard router on its own: the page, its assets and Leaflet are served from this process, safely."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.dashboard.router import DASHBOARD_DIR, LEAFLET_DIR, router


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_page_is_served_with_a_strict_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    html = r.text
    # Every script and stylesheet is local: no CDN, no web font.
    assert "/static/leaflet/leaflet.js" in html and "/static/leaflet/leaflet.css" in html
    assert "http://" not in html and "https://" not in html


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/static/dashboard/app.js", "text/javascript"),
        ("/static/dashboard/api.js", "text/javascript"),
        ("/static/dashboard/mapview.js", "text/javascript"),
        ("/static/dashboard/i18n.js", "text/javascript"),
        ("/static/dashboard/style.css", "text/css"),
        ("/static/dashboard/favicon.svg", "image/svg+xml"),
        ("/static/dashboard/i18n_id.json", "application/json"),
        ("/static/leaflet/leaflet.js", "text/javascript"),
        ("/static/leaflet/leaflet.css", "text/css"),
        ("/static/leaflet/images/layers.png", "image/png"),
    ],
)
def test_assets_are_served_with_their_types(client: TestClient, path: str, media: str) -> None:
    r = client.get(path)
    assert r.status_code == 200, path
    assert r.headers["content-type"].startswith(media)
    assert r.headers["x-content-type-options"] == "nosniff"


def test_leaflet_comes_from_the_installed_package(client: TestClient) -> None:
    assert client.get("/static/leaflet/leaflet.js").content == (LEAFLET_DIR / "leaflet.js").read_bytes()
    assert not any(DASHBOARD_DIR.rglob("leaflet*.js")), "Leaflet must not be copied into the repository"


def test_unchanged_assets_answer_304(client: TestClient) -> None:
    first = client.get("/static/dashboard/app.js")
    again = client.get("/static/dashboard/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_every_imported_module_is_served(client: TestClient) -> None:
    # The page's scripts are ES modules importing each other: follow the imports from the entry point.
    seen: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        r = client.get(f"/static/dashboard/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript"), name
        todo += re.findall(r'^(?:import|export)\b[^;]*?\bfrom "\./([\w.]+\.js)";', r.text, re.M)
    assert seen == {p.name for p in DASHBOARD_DIR.glob("*.js")}, "a script is never loaded, or missing"


@pytest.mark.parametrize(
    "path",
    [
        "/static/dashboard/router.py",
        "/static/dashboard/__init__.py",
        "/static/dashboard/nope.js",
        "/static/dashboard/index.html",
        "/static/leaflet/../../../../../../etc/passwd",
        "/static/leaflet/%2e%2e/%2e%2e/__init__.py",
        "/static/leaflet/images",
        "/static/leaflet/%00",
        "/static/dashboard/%00.js",
        "/static/leaflet/" + "a" * 5000 + ".js",
        "/static/dashboard/..%2frouter.py",
    ],
)
def test_only_assets_are_reachable(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_translations_have_the_same_keys() -> None:
    ids = json.loads((DASHBOARD_DIR / "i18n_id.json").read_text(encoding="utf-8"))
    ens = json.loads((DASHBOARD_DIR / "i18n_en.json").read_text(encoding="utf-8"))
    assert set(ids) == set(ens)
    # Every key the page asks for exists.
    used: set[str] = set()
    for f in [*DASHBOARD_DIR.glob("*.js"), DASHBOARD_DIR / "index.html"]:
        text = f.read_text(encoding="utf-8")
        for attr in ('data-i18n="', 'data-i18n-placeholder="'):
            for part in text.split(attr)[1:]:
                used.add(part.split('"', 1)[0])
        used.update(re.findall(r'\bt\("([\w.]+)"', text))
    assert used, "no translation keys found"
    assert used <= set(ids), sorted(used - set(ids))


def test_package_data_holds_every_asset() -> None:
    # pyproject's package-data globs are flat per package: assets must sit next to router.py.
    for name in [
        "index.html",
        "app.js",
        "state.js",
        "session.js",
        "live.js",
        "board.js",
        "crate.js",
        "deliveries.js",
        "fleet.js",
        "views.js",
        "api.js",
        "i18n.js",
        "mapview.js",
        "style.css",
        "favicon.svg",
        "i18n_id.json",
        "i18n_en.json",
    ]:
        assert (DASHBOARD_DIR / name).is_file(), name
    assert not [p for p in DASHBOARD_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert Path(DASHBOARD_DIR / "__init__.py").is_file()
