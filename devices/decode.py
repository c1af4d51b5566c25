"""Decoding and validation of what trackers publish (CONTRACT section 1).

This is the ingest hot path, so validation is written by hand instead of going through pydantic: one pass
over each reading's fields with exact type checks. `devices/wire.py` documents the same formats as pydantic
models, and the tests check both agree.

Every rejection carries a reason code from `REASONS`; those codes are the `reason` label of
`kawal_readings_rejected_total` and are listed in docs/ingest.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from devices.reading import Reading, SealState
from kawal.timeutil import EPOCH_2000, parse_time
from kawal.trips import ID_RE

try:  # orjson parses 2-3x faster than the stdlib; optional so a bare install still works.
    import orjson

    _fast_loads: Any = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None

MAX_PAYLOAD = 256 * 1024
MAX_BATCH = 1000
MAX_FUTURE_S = 24 * 3600.0
TRACKER_ID = ID_RE

# Whole-payload reasons: the message is rejected as one unit.
PAYLOAD_TOO_LARGE = "payload_too_large"
NOT_JSON = "not_json"
BAD_SHAPE = "bad_shape"
BATCH_TOO_LARGE = "batch_too_large"
BAD_TOPIC = "bad_topic"
BAD_STATUS = "bad_status"
# Per-reading reasons: one invalid reading; the rest of its batch is still taken.
NOT_OBJECT = "not_object"
ID_MISMATCH = "id_mismatch"
MISSING_TS = "missing_ts"
BAD_TS = "bad_ts"
TS_FUTURE = "ts_future"
TS_BEFORE_2000 = "ts_before_2000"
POSITION_INCOMPLETE = "position_incomplete"
LAT_OUT_OF_RANGE = "lat_out_of_range"
LON_OUT_OF_RANGE = "lon_out_of_range"
NOT_FINITE = "not_finite"
BAD_TYPE = "bad_type"
OUT_OF_RANGE = "out_of_range"
BAD_SEQ = "bad_seq"
BAD_SEAL = "bad_seal"
# Kawal's own failure (a bug) on a message; the payload is kept like any rejection so ingest goes on.
INTERNAL_ERROR = "internal_error"

REASONS: tuple[str, ...] = (
    PAYLOAD_TOO_LARGE,
    NOT_JSON,
    BAD_SHAPE,
    BATCH_TOO_LARGE,
    BAD_TOPIC,
    BAD_STATUS,
    NOT_OBJECT,
    ID_MISMATCH,
    MISSING_TS,
    BAD_TS,
    TS_FUTURE,
    TS_BEFORE_2000,
    POSITION_INCOMPLETE,
    LAT_OUT_OF_RANGE,
    LON_OUT_OF_RANGE,
    NOT_FINITE,
    BAD_TYPE,
    OUT_OF_RANGE,
    BAD_SEQ,
    BAD_SEAL,
    INTERNAL_ERROR,
)

REASON_HELP: dict[str, str] = {
    PAYLOAD_TOO_LARGE: "payload over 256 KiB (whole message)",
    NOT_JSON: "payload is not UTF-8 JSON (whole message)",
    BAD_SHAPE: "JSON is neither an object nor an array of 1..1000 elements (whole message)",
    BATCH_TOO_LARGE: "batch of more than 1000 readings (whole message)",
    BAD_TOPIC: "the tracker id in the topic does not match [A-Za-z0-9._-]{1,64}",
    BAD_STATUS: "status payload is not `online` or `offline`",
    NOT_OBJECT: "a batch element that is not a JSON object",
    ID_MISMATCH: "`id` differs from the tracker id in the topic",
    MISSING_TS: "no `ts` (`tst` for OwnTracks)",
    BAD_TS: "`ts` is neither Unix seconds nor an RFC 3339 time with offset",
    TS_FUTURE: "`ts` more than 24 h ahead of the server's wall clock",
    TS_BEFORE_2000: "`ts` before 2000-01-01",
    POSITION_INCOMPLETE: "`lat` without `lon` or the other way round",
    LAT_OUT_OF_RANGE: "`lat` outside [-90, 90]",
    LON_OUT_OF_RANGE: "`lon` outside [-180, 180]",
    NOT_FINITE: "a numeric field is NaN or infinite",
    BAD_TYPE: "a known field has the wrong JSON type",
    OUT_OF_RANGE: "`acc`/`spd` below 0, `hdg` outside 0..360 or `bat` outside 0..100",
    BAD_SEQ: "`seq` is not an integer >= 0",
    BAD_SEAL: "`seal` is not closed, open or tampered",
    INTERNAL_ERROR: "Kawal failed to decode or store the message (a bug); the payload is kept",
}

STATUSES = frozenset({"online", "offline"})
SEALS = frozenset({"closed", "open", "tampered"})
NATIVE_FIELDS = frozenset({"ts", "lat", "lon", "seq", "id", "acc", "spd", "hdg", "bat", "seal"})
# OwnTracks field -> Kawal field (CONTRACT 1.3). `_type` is consumed, everything else goes to extra.
OWNTRACKS_MAP = {
    "tst": "ts",
    "lat": "lat",
    "lon": "lon",
    "acc": "acc",
    "vel": "spd",
    "cog": "hdg",
    "batt": "bat",
}
OWNTRACKS_FIELDS = frozenset({*OWNTRACKS_MAP, "_type"})

Kind = Literal["telemetry", "status", "ignored"]


@dataclass(slots=True)
class Rejection:
    reason: str
    detail: str
    raw: bytes


@dataclass(slots=True)
class Decoded:
    kind: Kind
    tracker_id: str | None
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    status: str | None = None


class _Invalid(Exception):
    """One invalid reading; carries its reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail


def _ignored() -> Decoded:
    return Decoded("ignored", None)


def _loads(payload: bytes) -> Any:
    """Parse JSON. Falls back to the stdlib so `NaN`/`Infinity` literals reach the per-field
    finiteness check (a per-reading `not_finite`) instead of failing the whole batch."""
    if _fast_loads is not None:
        try:
            return _fast_loads(payload)
        except ValueError:
            pass
    return json.loads(payload)


def _to_float(key: str, v: Any) -> float:
    """The slow path of a numeric field: ints, non-finite floats and wrong types."""
    t = type(v)
    if t is float:
        raise _Invalid(NOT_FINITE, f"{key} is {v!r}")
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise _Invalid(NOT_FINITE, f"{key} is too large") from None
    raise _Invalid(BAD_TYPE, f"{key} must be a number, got {t.__name__}")


def _reading(d: dict[str, Any], tracker_id: str, now: float, extra_keys: frozenset[str]) -> Reading:
    """Validate one native-shaped reading dict (OwnTracks is renamed to this shape first).

    Numbers take an inline fast path: a float `v` is finite exactly when `v - v == 0.0`.
    """
    get = d.get
    raw_ts = get("ts")
    if raw_ts is None:
        raise _Invalid(MISSING_TS, "ts is required")
    if type(raw_ts) is float or type(raw_ts) is int:
        ts = float(raw_ts) if type(raw_ts) is float else _to_float("ts", raw_ts)
        if ts - ts != 0.0:
            raise _Invalid(NOT_FINITE, f"ts is {raw_ts!r}")
    else:
        try:
            ts = parse_time(raw_ts)
        except (ValueError, OverflowError):
            raise _Invalid(BAD_TS, f"cannot parse ts {str(raw_ts)[:64]!r}") from None
    if ts > now + MAX_FUTURE_S:
        raise _Invalid(TS_FUTURE, f"ts {ts:.3f} is more than 24 h after {now:.3f}")
    if ts < EPOCH_2000:
        raise _Invalid(TS_BEFORE_2000, f"ts {ts:.3f} is before 2000-01-01")

    lat = get("lat")
    if lat is not None and (type(lat) is not float or lat - lat != 0.0):
        lat = _to_float("lat", lat)
    lon = get("lon")
    if lon is not None and (type(lon) is not float or lon - lon != 0.0):
        lon = _to_float("lon", lon)
    if lat is None:
        if lon is not None:
            raise _Invalid(POSITION_INCOMPLETE, "lat and lon must be sent together")
    else:
        if lon is None:
            raise _Invalid(POSITION_INCOMPLETE, "lat and lon must be sent together")
        if not -90.0 <= lat <= 90.0:
            raise _Invalid(LAT_OUT_OF_RANGE, f"lat {lat!r}")
        if not -180.0 <= lon <= 180.0:
            raise _Invalid(LON_OUT_OF_RANGE, f"lon {lon!r}")

    acc = get("acc")
    if acc is not None:
        if type(acc) is not float or acc - acc != 0.0:
            acc = _to_float("acc", acc)
        if acc < 0.0:
            raise _Invalid(OUT_OF_RANGE, f"acc {acc!r} < 0")
    spd = get("spd")
    if spd is not None:
        if type(spd) is not float or spd - spd != 0.0:
            spd = _to_float("spd", spd)
        if spd < 0.0:
            raise _Invalid(OUT_OF_RANGE, f"spd {spd!r} < 0")
    hdg = get("hdg")
    if hdg is not None:
        if type(hdg) is not float or hdg - hdg != 0.0:
            hdg = _to_float("hdg", hdg)
        if not 0.0 <= hdg <= 360.0:
            raise _Invalid(OUT_OF_RANGE, f"hdg {hdg!r} not in 0..360")
    bat = get("bat")
    if bat is not None:
        if type(bat) is not float or bat - bat != 0.0:
            bat = _to_float("bat", bat)
        if not 0.0 <= bat <= 100.0:
            raise _Invalid(OUT_OF_RANGE, f"bat {bat!r} not in 0..100")

    seq = get("seq")
    if seq is not None and (type(seq) is not int or seq < 0 or seq > 0x7FFFFFFFFFFFFFFF):
        raise _Invalid(BAD_SEQ, f"seq {str(seq)[:32]!r} is not an integer >= 0")

    seal: Any = get("seal")
    if seal is not None and (type(seal) is not str or seal not in SEALS):
        raise _Invalid(BAD_SEAL, f"seal {str(seal)[:32]!r}")

    extra = None
    if not d.keys() <= extra_keys:
        extra = {k: v for k, v in d.items() if k not in extra_keys}
    return Reading(tracker_id, ts, lat, lon, seq, acc, spd, hdg, bat, cast("SealState | None", seal), extra)


def _element_raw(element: object) -> bytes:
    try:
        return json.dumps(element, ensure_ascii=False, allow_nan=True).encode("utf-8", "backslashreplace")
    except (TypeError, ValueError):  # pragma: no cover - parsed JSON always serialises
        return repr(element).encode()


def _native(tracker_id: str, payload: bytes, now: float) -> Decoded:
    out = Decoded("telemetry", tracker_id)
    try:
        doc = _loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        out.rejections.append(Rejection(NOT_JSON, str(e)[:200], payload))
        return out
    if type(doc) is dict:
        try:
            if "id" in doc and doc["id"] != tracker_id:
                raise _Invalid(ID_MISMATCH, f"id {str(doc['id'])[:64]!r} != topic id {tracker_id!r}")
            out.readings.append(_reading(doc, tracker_id, now, NATIVE_FIELDS))
        except _Invalid as e:
            out.rejections.append(Rejection(e.reason, e.detail, payload))
        return out
    if type(doc) is not list or not doc:
        out.rejections.append(
            Rejection(
                BAD_SHAPE, f"expected an object or a non-empty array, got {type(doc).__name__}", payload
            )
        )
        return out
    if len(doc) > MAX_BATCH:
        out.rejections.append(Rejection(BATCH_TOO_LARGE, f"{len(doc)} readings > {MAX_BATCH}", payload))
        return out
    readings = out.readings
    for i, el in enumerate(doc):
        try:
            if type(el) is not dict:
                raise _Invalid(NOT_OBJECT, f"element {i} is {type(el).__name__}")
            if "id" in el and el["id"] != tracker_id:
                raise _Invalid(
                    ID_MISMATCH, f"element {i}: id {str(el['id'])[:64]!r} != topic id {tracker_id!r}"
                )
            readings.append(_reading(el, tracker_id, now, NATIVE_FIELDS))
        except _Invalid as e:
            detail = e.detail if e.reason in (NOT_OBJECT, ID_MISMATCH) else f"element {i}: {e.detail}"
            out.rejections.append(Rejection(e.reason, detail, _element_raw(el)))
    return out


def _owntracks(tracker_id: str, payload: bytes, now: float) -> Decoded:
    try:
        doc = _loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        return Decoded("telemetry", tracker_id, rejections=[Rejection(NOT_JSON, str(e)[:200], payload)])
    if type(doc) is not dict:
        return Decoded(
            "telemetry",
            tracker_id,
            rejections=[Rejection(BAD_SHAPE, f"expected an object, got {type(doc).__name__}", payload)],
        )
    if doc.get("_type") != "location":
        return Decoded("ignored", tracker_id)  # waypoints, transitions, cards, encrypted...: not ours
    d: dict[str, Any] = {}
    for k, v in doc.items():
        mapped = OWNTRACKS_MAP.get(k)
        if mapped is None:
            d[k] = v
        # iOS reports an unknown speed or course as -1 (CoreLocation's "invalid"): treat as absent.
        elif not (mapped in ("spd", "hdg") and v == -1):
            d[mapped] = v
    d.pop("_type", None)
    out = Decoded("telemetry", tracker_id)
    try:
        # Renamed fields are validated like native ones; OwnTracks' own extras (tid, alt, conn...) are kept.
        out.readings.append(_reading(d, tracker_id, now, _OT_KNOWN))
    except _Invalid as e:
        out.rejections.append(Rejection(e.reason, e.detail, payload))
    return out


# After renaming, these keys are the Kawal fields; the rest of an OwnTracks message is extra.
_OT_KNOWN = frozenset(OWNTRACKS_MAP.values())


def _status(tracker_id: str, payload: bytes) -> Decoded:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        text = ""
    if text in STATUSES:
        return Decoded("status", tracker_id, status=text)
    return Decoded(
        "status",
        tracker_id,
        rejections=[
            Rejection(BAD_STATUS, f"status must be online or offline, got {payload[:32]!r}", payload)
        ],
    )


def may_open_seal(payload: bytes) -> bool:
    """Before decoding, a cheap guess that a payload reports a seal open or tampered (false positives are
    harmless): such a message skips the lingers that gather batches, so a seal break never waits for them."""
    return b'"open"' in payload or b'"tampered"' in payload


def decode_message(topic: str, payload: bytes, now: float) -> Decoded:
    """Decode one MQTT message. `now` is the server's wall clock (Unix seconds), whatever KAWAL_CLOCK says.

    Never raises for anything a tracker can send: bad input becomes rejections with reason codes.
    """
    parts = topic.split("/")
    n = len(parts)
    if n == 4 and parts[0] == "kawal" and parts[1] == "v1":
        leaf = parts[3]
        if leaf != "telemetry" and leaf != "status":
            return _ignored()
        tracker_id = parts[2]
        if TRACKER_ID.fullmatch(tracker_id) is None:
            kind: Kind = "telemetry" if leaf == "telemetry" else "status"
            return Decoded(
                kind, None, rejections=[Rejection(BAD_TOPIC, f"bad tracker id in {topic!r}", payload)]
            )
        if len(payload) > MAX_PAYLOAD:
            return Decoded(
                "telemetry" if leaf == "telemetry" else "status",
                tracker_id,
                rejections=[Rejection(PAYLOAD_TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD}", payload)],
            )
        if leaf == "telemetry":
            return _native(tracker_id, payload, now)
        return _status(tracker_id, payload)
    if n == 3 and parts[0] == "owntracks":
        tracker_id = f"{parts[1]}.{parts[2]}"
        if TRACKER_ID.fullmatch(tracker_id) is None:
            return Decoded(
                "telemetry", None, rejections=[Rejection(BAD_TOPIC, f"bad tracker id in {topic!r}", payload)]
            )
        if len(payload) > MAX_PAYLOAD:
            return Decoded(
                "telemetry",
                tracker_id,
                rejections=[Rejection(PAYLOAD_TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD}", payload)],
            )
        return _owntracks(tracker_id, payload, now)
    return _ignored()
