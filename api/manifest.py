"""Bulk trip manifests: CSV or GeoJSON, one row or feature per trip (see docs/api.md, "Trip manifests").

The whole file is validated first; if any row is bad, every problem is reported with its line number
(CSV) or feature index (GeoJSON) and nothing is imported. A valid file is written in one transaction,
with one audit record per trip.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from kawal.audit import AuditLog
from kawal.timeutil import parse_time
from kawal.trips import ID_RE, Trip, TripIn, TripRepository
from storage import Database

Format = Literal["auto", "csv", "geojson"]

_ZONE_KEYS = ("name", "lat", "lon", "radius_m")
_NUMBER_FIELDS = {"corridor_m", "max_stop_min", "max_silence_min"}
_FLAT_PREFIXES = ("origin_", "destination_")
_CSV_FIELD_LIMIT = 64 * 1024 * 1024  # a route of 100 000 points fits in one cell
_WKT_RE = re.compile(r"^\s*LINESTRING\s*(?:Z|M|ZM)?\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass
class ManifestError(Exception):
    """Every problem found, each as (where, what): where is "line N" or "feature N"."""

    problems: list[tuple[str, str]]

    def __str__(self) -> str:
        return "\n".join(f"{where}: {what}" for where, what in self.problems)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    trips: list[Trip] = field(default_factory=list)


class RowError(ValueError):
    pass


# ---- parsing ------------------------------------------------------------------------------------------


def parse_route(text: str) -> list[list[float]]:
    """WKT ``LINESTRING(lon lat, ...)`` or ``lat lon; lat lon; ...`` -> [[lat, lon], ...]."""
    m = _WKT_RE.match(text)
    points: list[list[float]] = []
    if m:
        for i, part in enumerate(m.group(1).split(",")):
            nums = part.split()
            if len(nums) < 2:
                raise RowError(f"route: WKT point {i} needs 'lon lat', got {part.strip()!r}")
            lon, lat = _num(nums[0], f"route point {i} lon"), _num(nums[1], f"route point {i} lat")
            points.append([lat, lon])
        return points
    for i, part in enumerate(p for p in re.split(r"[;|]", text) if p.strip()):
        nums = part.replace(",", " ").split()
        if len(nums) != 2:
            raise RowError(f"route: point {i} needs 'lat lon', got {part.strip()!r}")
        points.append([_num(nums[0], f"route point {i} lat"), _num(nums[1], f"route point {i} lon")])
    return points


def parse_seals(text: str) -> list[str]:
    """A CSV cell of seal numbers: a JSON array, or numbers separated by ``;`` or ``|``."""
    if text.lstrip().startswith("["):
        try:
            seals = json.loads(text)
        except ValueError as e:
            raise RowError(f"seals: not a JSON array of seal numbers: {e}") from None
        if not isinstance(seals, list) or not all(isinstance(s, str) for s in seals):
            raise RowError("seals: a JSON array of strings is expected")
        return seals
    return [s.strip() for s in re.split(r"[;|]", text) if s.strip()]


def _num(text: Any, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise RowError(f"{what}: not a number: {text!r}") from None


def _body_from_flat(props: Mapping[str, Any], problems: list[str]) -> tuple[dict[str, Any], set[str]]:
    """CSV row / GeoJSON properties -> a TripIn body. Flat origin_*/destination_* keys build the zones.

    A cell that cannot be converted is left out and its problem appended to `problems`; the returned set
    names the body fields it belonged to, so validation does not report them a second time as missing."""
    body: dict[str, Any] = {}
    failed: set[str] = set()
    zones: dict[str, dict[str, Any]] = {}

    def convert(field: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RowError as e:
            problems.append(str(e))
            failed.add(field)
            return None

    for key, value in props.items():
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        if key == "trip_id":
            continue
        prefix = next((p for p in _FLAT_PREFIXES if key.startswith(p)), None)
        if prefix is not None:
            zones.setdefault(prefix[:-1], {})[key[len(prefix) :]] = value
        elif key in _NUMBER_FIELDS and isinstance(value, str):
            body[key] = convert(key, _num, value, key)
        elif key == "stops" and isinstance(value, str):
            body["stops"] = convert("stops", _json_cell, value, "stops", "a JSON array of stops")
        elif key == "route" and isinstance(value, str):
            body["route"] = convert("route", parse_route, value)
        elif key == "seals" and isinstance(value, str):
            body["seals"] = convert("seals", parse_seals, value)
        else:
            body[key] = value
    for name, flat in zones.items():
        zone = dict(body.get(name) or {})
        for k, v in flat.items():
            is_num = k in ("lat", "lon", "radius_m") and isinstance(v, str)
            zone[k] = convert(name, _num, v, f"{name}_{k}") if is_num else v
        body[name] = zone
    return {k: v for k, v in body.items() if k not in failed}, failed


def _json_cell(text: str, what: str, expected: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise RowError(f"{what}: not {expected}: {e}") from None


def _validate(trip_id: Any, body: dict[str, Any], failed: set[str], problems: list[str]) -> TripIn | None:
    """Every problem of one row at once: the trip_id, each field, and the schedule even when fields fail."""
    if not isinstance(trip_id, str) or not ID_RE.fullmatch(trip_id):
        problems.append(f"trip_id must match [A-Za-z0-9._-]{{1,64}}, got {trip_id!r}")
    try:
        trip = TripIn.model_validate(body)
    except ValidationError as e:
        # A field whose cell could not be converted is already reported; pydantic would call it missing.
        found = [_pydantic_problem(err) for err in e.errors() if not (err.get("loc") and err["loc"][0] in failed)]
        problems.extend(found)
        schedule = _schedule_problem(body)
        if schedule and schedule not in found:
            problems.append(schedule)  # pydantic checks the schedule only once every field is valid
        return None
    return None if problems else trip


def _schedule_problem(body: Mapping[str, Any]) -> str | None:
    try:
        depart, arrive = parse_time(body["depart_after"]), parse_time(body["arrive_by"])
    except (KeyError, TypeError, ValueError):
        return None  # missing or unreadable: reported as such
    return "arrive_by must come after depart_after" if arrive <= depart else None


def _pydantic_problem(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid"))
    # A ValueError raised by a validator reads "Value error, <message>": the message is enough.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return f"{loc}: {msg}" if loc else msg


def parse_csv(text: str) -> list[tuple[str, TripIn]]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[tuple[str, str]] = []
    out: list[tuple[str, TripIn]] = []
    try:
        header = next(reader)
    except StopIteration:
        raise ManifestError([("line 1", "the file is empty: expected a header row")]) from None
    except csv.Error as e:
        raise ManifestError([("line 1", f"not CSV: {e}")]) from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [
        c for c in ("trip_id", "crate_id", "tracker_id", "route", "depart_after", "arrive_by") if c not in header
    ]
    if missing:
        raise ManifestError([("line 1", f"the header lacks the column(s): {', '.join(missing)}")])
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ManifestError([("line 1", f"repeated column(s): {', '.join(dupes)}")])
    seen: dict[str, str] = {}
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            problems.append((f"line {line}", f"unreadable CSV: {e}"))
            break
        where = f"line {line}"
        line = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue  # blank lines are allowed
        if len(row) != len(header):
            problems.append((where, f"expected {len(header)} cells, found {len(row)}"))
            continue
        props = dict(zip(header, row, strict=True))
        _collect(where, props.get("trip_id", "").strip(), props, seen, out, problems)
    if problems:
        raise ManifestError(problems)
    if not out:
        raise ManifestError([("line 2", "no trips in the file")])
    return out


def parse_geojson(text: str) -> list[tuple[str, TripIn]]:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ManifestError([("file", f"not JSON: {e}")]) from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    else:
        raise ManifestError([("file", "expected a GeoJSON FeatureCollection of LineString features")])
    if not isinstance(features, list) or not features:
        raise ManifestError([("file", "the FeatureCollection has no features")])
    problems: list[tuple[str, str]] = []
    out: list[tuple[str, TripIn]] = []
    seen: dict[str, str] = {}
    for i, feature in enumerate(features):
        where = f"feature {i}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append((where, "not a GeoJSON Feature"))
            continue
        props = feature.get("properties")
        if not isinstance(props, dict):
            problems.append((where, "properties must be an object"))
            continue
        geometry = feature.get("geometry")
        props = dict(props)
        if props.get("trip_id") is None and isinstance(feature.get("id"), str):
            props["trip_id"] = feature["id"]
        route_problem = None
        try:
            props["route"] = _geojson_route(geometry)
        except RowError as e:
            props.pop("route", None)
            route_problem = str(e)
        _collect(where, props.get("trip_id"), props, seen, out, problems, route_problem)
    if problems:
        raise ManifestError(problems)
    return out


def _geojson_route(geometry: Any) -> list[list[float]]:
    if not isinstance(geometry, dict) or geometry.get("type") != "LineString":
        raise RowError("geometry must be a LineString (the route)")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list):
        raise RowError("geometry.coordinates must be an array of [lon, lat] positions")
    route: list[list[float]] = []
    for j, pos in enumerate(coords):
        if (
            not isinstance(pos, list)
            or len(pos) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos[:2])
        ):
            raise RowError(f"geometry.coordinates[{j}] must be [lon, lat]")
        route.append([float(pos[1]), float(pos[0])])  # GeoJSON is [lon, lat]; a trip route is [lat, lon]
    return route


def _collect(
    where: str,
    trip_id: Any,
    props: Mapping[str, Any],
    seen: dict[str, str],
    out: list[tuple[str, TripIn]],
    problems: list[tuple[str, str]],
    route_problem: str | None = None,
) -> None:
    """Validate one row or feature, adding each of its problems (one line each) to `problems`."""
    found: list[str] = [route_problem] if route_problem else []
    body, failed = _body_from_flat(props, found)
    if route_problem:
        failed.add("route")
    trip = _validate(trip_id, body, failed, found)
    if isinstance(trip_id, str) and trip_id in seen:
        found.append(f"trip_id {trip_id!r} is repeated (first at {seen[trip_id]})")
    previous = trip.previous_trip_id if trip is not None else props.get("previous_trip_id")
    if trip_id and previous == trip_id:
        found.append("previous_trip_id names the trip itself")
    if isinstance(trip_id, str) and trip_id not in seen:
        seen[trip_id] = where
    if found or trip is None:
        problems.extend((where, what) for what in found)
        return
    out.append((trip_id, trip))


def parse_manifest(data: bytes | str, fmt: Format = "auto", filename: str = "") -> list[tuple[str, TripIn]]:
    """Every (trip_id, TripIn) of the file, or ManifestError listing every bad row."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ManifestError([("file", f"not UTF-8: {e}")]) from None
    else:
        text = data
    if fmt == "auto":
        lower = filename.lower()
        if lower.endswith((".geojson", ".json")):
            fmt = "geojson"
        elif lower.endswith(".csv"):
            fmt = "csv"
        else:
            fmt = "geojson" if text.lstrip().startswith("{") else "csv"
    return parse_geojson(text) if fmt == "geojson" else parse_csv(text)


# ---- writing ------------------------------------------------------------------------------------------


def trip_audit_data(trip: Trip) -> dict[str, Any]:
    """What the audit log keeps of a trip version: all of it, so the evidence shows what was planned."""
    data: dict[str, Any] = trip.model_dump(mode="json", exclude={"created_at", "updated_at"})
    return data


def import_trips(
    db: Database,
    items: Iterable[tuple[str, TripIn]],
    actor: str,
    audit: AuditLog | None = None,
    now: float | None = None,
) -> ImportResult:
    """Write every trip in one transaction, each with its audit record. All or nothing.

    Every trip gets `updated_at = now`, which is how a running service notices the import: it polls
    `count(*)` and `max(updated_at)` of the trips table (kawal/service.py) and reloads when they change.
    """
    repo = TripRepository(db)
    audit = audit or AuditLog(db)
    at = time.time() if now is None else now
    result = ImportResult()
    with db.write() as c:
        for trip_id, body in items:
            trip, created = repo.put_in(c, trip_id, body, at)
            audit.append(
                c,
                actor,
                "trip.create" if created else "trip.update",
                f"trip:{trip_id}",
                {**trip_audit_data(trip), "source": "import"},
            )
            result.trips.append(trip)
            if created:
                result.created += 1
            else:
                result.updated += 1
    return result
