"""The administrative boundaries (kawal/places.py) for the dashboard's offline base map."""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache

from fastapi import APIRouter, Request, Response

from api.auth import Viewer
from api.deps import Ctx
from api.routers.common import errors
from kawal.places import Places

router = APIRouter(prefix="/api/v1", tags=["places"])

_GEOJSON = "application/geo+json"


@lru_cache(maxsize=4)
def _bodies(places: Places) -> tuple[bytes, bytes, str]:
    """The simplified GeoJSON, gzipped once (about a quarter of its size), and its ETag."""
    raw = places.geojson()
    return raw, gzip.compress(raw, 6, mtime=0), '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'


@router.get(
    "/boundaries",
    summary="Kecamatan and desa boundaries as GeoJSON",
    responses={
        **errors(),
        200: {
            "description": "A FeatureCollection: one feature per kecamatan, then per desa, each with "
            "`level`, `code`, `name`, `kecamatan_code` and its centre `lat`/`lon`; polygons simplified to "
            "about 20 m, `[lon, lat]` order, and the data's `attribution`.",
            "content": {_GEOJSON: {"schema": {"type": "object"}}},
        },
        304: {"description": "unchanged since the ETag in If-None-Match"},
    },
)
def boundaries(request: Request, principal: Viewer, ctx: Ctx) -> Response:
    """The areas that `place` on alerts and crates comes from (`KAWAL_BOUNDARIES`, by default Jombang
    regency), for the dashboard's offline map. Gzipped when the client accepts it; cacheable by ETag."""
    raw, zipped, etag = _bodies(ctx.places)
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(zipped, media_type=_GEOJSON, headers={**headers, "Content-Encoding": "gzip"})
    return Response(raw, media_type=_GEOJSON, headers=headers)
