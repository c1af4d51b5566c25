"""Serves the ops dashboard: the page at `/`, its own assets, and Leaflet from the `xstatic-leaflet` package.

Everything is served from this process, so the page works with no internet access. Assets are plain
routes (not a StaticFiles mount) so the router can be included into any FastAPI app unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import xstatic.pkg.leaflet as xs_leaflet
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

DASHBOARD_DIR = Path(__file__).resolve().parent
LEAFLET_DIR = Path(xs_leaflet.BASE_DIR).resolve()
LEAFLET_VERSION: str = xs_leaflet.VERSION

MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".map": "application/json",  # source maps, fetched only by browser developer tools
}

# Scripts and connections only to this origin. Images may come from elsewhere because the optional base-map
# tiles (GET /api/v1/config `tile_url`) live on another server; without one, nothing else is requested.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Leaflet positions its panes with inline styles
        "img-src 'self' data: blob: http: https:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _etag(path: Path) -> str:
    st = path.stat()
    digest = hashlib.sha1(f"{st.st_mtime_ns}-{st.st_size}".encode(), usedforsecurity=False).hexdigest()
    return f'"{digest}"'


def serve_file(
    base: Path, relative: str, request: Request, extra_headers: dict[str, str] | None = None
) -> Response:
    """One file under `base`, or 404. Refuses paths that leave `base` and types the page does not use."""
    try:
        path = (base / relative).resolve()
        found = path.suffix in MEDIA_TYPES and path.is_relative_to(base) and path.is_file()
    except (ValueError, OSError):  # a NUL byte, a name too long for the file system...
        found = False
    if not found:
        raise HTTPException(status_code=404, detail="not found")
    media_type = MEDIA_TYPES[path.suffix]
    # "no-cache" means revalidate: an upgraded Kawal serves its new page at once; an unchanged one, a 304.
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", **(extra_headers or {})}
    etag = _etag(path)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return FileResponse(path, media_type=media_type, headers={**headers, "ETag": etag})


@router.get("/")
def dashboard_page(request: Request) -> Response:
    """The dashboard itself; it asks for a token and then reads everything from /api/v1."""
    return serve_file(DASHBOARD_DIR, "index.html", request, PAGE_HEADERS)


@router.get("/static/dashboard/{name}")
def dashboard_asset(name: str, request: Request) -> Response:
    """The page's own scripts, styles, translations and icon (package data next to this module)."""
    if name == "index.html":
        raise HTTPException(status_code=404, detail="not found")
    return serve_file(DASHBOARD_DIR, name, request)


@router.get("/static/leaflet/{path:path}")
def leaflet_asset(path: str, request: Request) -> Response:
    """Leaflet's JS, CSS and images, straight from the installed xstatic-leaflet package."""
    return serve_file(LEAFLET_DIR, path, request)
