"""The wire formats of CONTRACT section 1: every validity rule, every reason code, and the pydantic models
in devices/wire.py agreeing with the hand-written decoder."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from devices import decode as dec
from devices.decode import REASONS, decode_message
from devices.reading import Reading
from devices.wire import NativeReading, OwnTracksLocation, Status, telemetry_json_schema

NOW = 1_732_060_800.0  # 2024-11-20T00:00:00Z, the "wall clock" the decoder is given
TS = NOW - 3600
TOPIC = "kawal/v1/TRK-0001/telemetry"


def one(payload: Any, topic: str = TOPIC, now: float = NOW) -> dec.Decoded:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode_message(topic, raw, now)


def reasons(d: dec.Decoded) -> list[str]:
    return [r.reason for r in d.rejections]


# Each case: (name, topic, payload bytes, expected reason). Together they must cover REASONS.
GOOD = {"ts": TS, "lat": -7.546, "lon": 112.233}
REJECTION_CASES: list[tuple[str, str, bytes, str]] = [
    ("too large", TOPIC, b"[" + b" " * (256 * 1024) + b"]", dec.PAYLOAD_TOO_LARGE),
    ("not json", TOPIC, b"{not json", dec.NOT_JSON),
    ("not utf-8", TOPIC, b'{"ts": "\xff\xfe"}', dec.NOT_JSON),
    ("scalar", TOPIC, b"42", dec.BAD_SHAPE),
    ("string", TOPIC, b'"hello"', dec.BAD_SHAPE),
    ("empty batch", TOPIC, b"[]", dec.BAD_SHAPE),
    ("batch of 1001", TOPIC, json.dumps([GOOD] * 1001).encode(), dec.BATCH_TOO_LARGE),
    ("bad topic id", "kawal/v1/bad id!/telemetry", json.dumps(GOOD).encode(), dec.BAD_TOPIC),
    ("long topic id", f"kawal/v1/{'x' * 65}/telemetry", json.dumps(GOOD).encode(), dec.BAD_TOPIC),
    ("bad owntracks id", "owntracks/al ice/phone", b'{"_type":"location","tst":1}', dec.BAD_TOPIC),
    ("bad status", "kawal/v1/TRK-0001/status", b"sleeping", dec.BAD_STATUS),
    ("batch element not object", TOPIC, b"[1]", dec.NOT_OBJECT),
    ("id mismatch", TOPIC, json.dumps({**GOOD, "id": "TRK-0002"}).encode(), dec.ID_MISMATCH),
    ("missing ts", TOPIC, b'{"lat": 1, "lon": 2}', dec.MISSING_TS),
    ("unparsable ts", TOPIC, b'{"ts": "yesterday"}', dec.BAD_TS),
    ("ts without offset", TOPIC, b'{"ts": "2024-11-20T01:00:00"}', dec.BAD_TS),
    ("bool ts", TOPIC, b'{"ts": true}', dec.BAD_TS),
    ("ts 25 h ahead", TOPIC, json.dumps({"ts": NOW + 25 * 3600}).encode(), dec.TS_FUTURE),
    ("ts in 1999", TOPIC, b'{"ts": "1999-12-31T23:59:59Z"}', dec.TS_BEFORE_2000),
    ("lat without lon", TOPIC, json.dumps({"ts": TS, "lat": 1.0}).encode(), dec.POSITION_INCOMPLETE),
    ("lon without lat", TOPIC, json.dumps({"ts": TS, "lon": 1.0}).encode(), dec.POSITION_INCOMPLETE),
    ("lat 91", TOPIC, json.dumps({"ts": TS, "lat": 91, "lon": 1}).encode(), dec.LAT_OUT_OF_RANGE),
    ("lon -181", TOPIC, json.dumps({"ts": TS, "lat": 1, "lon": -181}).encode(), dec.LON_OUT_OF_RANGE),
    ("NaN literal", TOPIC, b'{"ts": 1732057200, "acc": NaN}', dec.NOT_FINITE),
    ("Infinity lat", TOPIC, b'{"ts": 1732057200, "lat": Infinity, "lon": 1}', dec.NOT_FINITE),
    ("1e999", TOPIC, b'{"ts": 1732057200, "spd": 1e999}', dec.NOT_FINITE),
    ("lat as string", TOPIC, json.dumps({"ts": TS, "lat": "1", "lon": 2}).encode(), dec.BAD_TYPE),
    ("bat as bool", TOPIC, json.dumps({"ts": TS, "bat": True}).encode(), dec.BAD_TYPE),
    ("acc < 0", TOPIC, json.dumps({"ts": TS, "acc": -0.5}).encode(), dec.OUT_OF_RANGE),
    ("spd < 0", TOPIC, json.dumps({"ts": TS, "spd": -1}).encode(), dec.OUT_OF_RANGE),
    ("hdg 361", TOPIC, json.dumps({"ts": TS, "hdg": 361}).encode(), dec.OUT_OF_RANGE),
    ("bat 101", TOPIC, json.dumps({"ts": TS, "bat": 101}).encode(), dec.OUT_OF_RANGE),
    ("seq -1", TOPIC, json.dumps({"ts": TS, "seq": -1}).encode(), dec.BAD_SEQ),
    ("seq 1.5", TOPIC, json.dumps({"ts": TS, "seq": 1.5}).encode(), dec.BAD_SEQ),
    ("seq string", TOPIC, json.dumps({"ts": TS, "seq": "7"}).encode(), dec.BAD_SEQ),
    ("seq 2**64", TOPIC, json.dumps({"ts": TS, "seq": 2**64}).encode(), dec.BAD_SEQ),
    ("seal broken", TOPIC, json.dumps({"ts": TS, "seal": "broken"}).encode(), dec.BAD_SEAL),
    ("seal as list", TOPIC, json.dumps({"ts": TS, "seal": ["open"]}).encode(), dec.BAD_SEAL),
    ("ts null", TOPIC, b'{"ts": null}', dec.MISSING_TS),
    ("owntracks not json", "owntracks/alice/phone", b"{", dec.NOT_JSON),
    ("owntracks array", "owntracks/alice/phone", b"[]", dec.BAD_SHAPE),
    ("owntracks no tst", "owntracks/alice/phone", b'{"_type":"location","lat":1,"lon":2}', dec.MISSING_TS),
]


@pytest.mark.parametrize(
    ("name", "topic", "payload", "reason"), REJECTION_CASES, ids=[c[0] for c in REJECTION_CASES]
)
def test_each_rule_rejects_with_its_reason(name: str, topic: str, payload: bytes, reason: str) -> None:
    d = decode_message(topic, payload, NOW)
    assert reasons(d) == [reason], (name, d)
    assert d.readings == []
    rej = d.rejections[0]
    assert rej.detail
    assert rej.raw  # what an operator will inspect


def test_every_reason_is_covered_and_documented() -> None:
    covered = {c[3] for c in REJECTION_CASES}
    # internal_error is Kawal's own failure; tests/test_ingest_pipeline.py covers it.
    assert covered | {dec.INTERNAL_ERROR} == set(REASONS)
    assert set(dec.REASON_HELP) == set(REASONS)
    assert len(REASONS) == len(set(REASONS))


def test_every_reason_is_in_the_docs() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "ingest.md").read_text()
    for reason in REASONS:
        assert f"| `{reason}` |" in doc, reason


def test_single_reading_all_fields() -> None:
    msg = {
        "ts": "2024-11-20T07:15:30.5+07:00",
        "lat": -7.546,
        "lon": 112.233,
        "seq": 17,
        "id": "TRK-0001",
        "acc": 4.5,
        "spd": 32,
        "hdg": 359.5,
        "bat": 87,
        "seal": "closed",
    }
    d = one(msg)
    assert d.kind == "telemetry" and d.tracker_id == "TRK-0001" and d.rejections == []
    assert d.readings == [
        Reading("TRK-0001", 1732061730.5, -7.546, 112.233, 17, 4.5, 32.0, 359.5, 87.0, "closed", None)
    ]
    assert isinstance(d.readings[0].spd, float)


def test_minimal_reading_and_boundaries() -> None:
    d = one(
        [
            {"ts": TS},
            {
                "ts": NOW + 24 * 3600,
                "lat": 90,
                "lon": -180,
                "hdg": 0,
                "bat": 100,
                "acc": 0,
                "spd": 0,
                "seq": 0,
            },
            {"ts": "2000-01-01T00:00:00Z", "lat": 0, "lon": 0, "hdg": 360, "bat": 0},
            {"ts": 1732057200, "seal": "tampered"},
            {"ts": "1732057200.25", "seal": "open"},
        ]
    )
    assert d.rejections == []
    r = d.readings
    assert [x.ts for x in r] == [TS, NOW + 86400, 946684800.0, 1732057200.0, 1732057200.25]
    assert r[0].lat is None and not r[0].has_position
    assert r[1].seq == 0 and r[1].has_position
    assert not r[2].has_position  # Null Island: valid, but no usable fix
    assert [x.seal for x in r] == [None, None, None, "tampered", "open"]


def test_future_limit_follows_the_now_argument() -> None:
    msg = {"ts": NOW + 10 * 86400}
    assert reasons(one(msg)) == [dec.TS_FUTURE]
    assert reasons(one(msg, now=NOW + 10 * 86400 - 3600)) == []


def test_unknown_fields_are_kept_as_extra_never_an_error() -> None:
    d = one({**GOOD, "alt": 31.5, "fw": "1.2.3", "sats": 9, "nested": {"a": [1, 2]}})
    assert d.rejections == []
    assert d.readings[0].extra == {"alt": 31.5, "fw": "1.2.3", "sats": 9, "nested": {"a": [1, 2]}}
    assert one(GOOD).readings[0].extra is None


def test_matching_id_is_fine() -> None:
    assert reasons(one({**GOOD, "id": "TRK-0001"})) == []


def test_mixed_batch_keeps_the_valid_readings() -> None:
    batch: list[Any] = [
        {"ts": TS + 1, "lat": -7.5, "lon": 112.2, "seq": 1},
        "garbage",
        {"ts": TS + 2, "lat": 95, "lon": 112.2, "seq": 2},
        {"ts": TS + 3, "lat": -7.5, "lon": 112.2, "seq": 3, "id": "OTHER"},
        {"ts": TS + 4, "lat": -7.5, "lon": 112.2, "seq": 4, "bat": 120},
        {"ts": TS + 5, "lat": -7.5, "lon": 112.2, "seq": 5},
        None,
    ]
    d = one(batch)
    assert [r.seq for r in d.readings] == [1, 5]
    assert reasons(d) == [
        dec.NOT_OBJECT,
        dec.LAT_OUT_OF_RANGE,
        dec.ID_MISMATCH,
        dec.OUT_OF_RANGE,
        dec.NOT_OBJECT,
    ]
    # The raw kept for a batch element is that element, not the whole batch.
    assert json.loads(d.rejections[1].raw) == batch[2]
    assert "element 2" in d.rejections[1].detail


def test_batch_of_exactly_1000_is_taken() -> None:
    d = one([{"ts": TS + i, "seq": i} for i in range(1000)])
    assert len(d.readings) == 1000 and d.rejections == []


def test_batch_duplicates_and_order_are_left_to_the_store() -> None:
    d = one([{"ts": TS + 2, "seq": 2}, {"ts": TS + 1, "seq": 1}, {"ts": TS + 2, "seq": 2}])
    assert [r.seq for r in d.readings] == [2, 1, 2]


def test_owntracks_location_maps_fields() -> None:
    msg = {
        "_type": "location",
        "tst": 1732057200,
        "lat": -7.55,
        "lon": 112.23,
        "acc": 12,
        "vel": 40,
        "cog": 270,
        "batt": 64,
        "tid": "ph",
        "alt": 44,
        "conn": "m",
        "topic": "owntracks/alice/phone",
    }
    d = one(msg, topic="owntracks/alice/phone")
    assert d.kind == "telemetry" and d.tracker_id == "alice.phone" and d.rejections == []
    (r,) = d.readings
    assert (r.tracker_id, r.ts, r.lat, r.lon, r.acc, r.spd, r.hdg, r.bat) == (
        "alice.phone",
        1732057200.0,
        -7.55,
        112.23,
        12.0,
        40.0,
        270.0,
        64.0,
    )
    assert r.extra == {"tid": "ph", "alt": 44, "conn": "m", "topic": "owntracks/alice/phone"}


def test_owntracks_unknown_speed_and_course_are_absent() -> None:
    d = one(
        {"_type": "location", "tst": 1732057200, "lat": 1, "lon": 2, "vel": -1, "cog": -1},
        topic="owntracks/bob/ipad",
    )
    (r,) = d.readings
    assert r.spd is None and r.hdg is None


def test_owntracks_rules_apply_after_mapping() -> None:
    d = one({"_type": "location", "tst": 1732057200, "lat": 1, "lon": 2, "batt": 150}, topic="owntracks/a/b")
    assert reasons(d) == [dec.OUT_OF_RANGE]


@pytest.mark.parametrize("type_", ["waypoint", "transition", "card", "encrypted", "lwt", None])
def test_owntracks_other_types_are_ignored(type_: str | None) -> None:
    body = {"tst": 1732057200} if type_ is None else {"_type": type_, "tst": 1732057200}
    d = one(body, topic="owntracks/alice/phone")
    assert d.kind == "ignored" and d.readings == [] and d.rejections == []


@pytest.mark.parametrize(
    "topic",
    [
        "owntracks/alice/phone/event",
        "owntracks/alice/phone/cmd",
        "kawal/v1/T/other",
        "kawal/v2/T/telemetry",
        "something/else",
        "",
    ],
)
def test_other_topics_are_ignored(topic: str) -> None:
    d = decode_message(topic, json.dumps(GOOD).encode(), NOW)
    assert d.kind == "ignored" and d.rejections == []


@pytest.mark.parametrize(
    ("payload", "status"), [(b"online", "online"), (b"offline", "offline"), (b"offline\n", "offline")]
)
def test_status(payload: bytes, status: str) -> None:
    d = decode_message("kawal/v1/TRK-0001/status", payload, NOW)
    assert (d.kind, d.tracker_id, d.status, d.rejections) == ("status", "TRK-0001", status, [])


def test_decoder_works_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dec, "_fast_loads", None)
    assert len(one([GOOD, {**GOOD, "ts": TS + 1}]).readings) == 2
    assert reasons(decode_message(TOPIC, b'{"ts": 1732057200, "acc": NaN}', NOW)) == [dec.NOT_FINITE]


# -- the pydantic models agree with the decoder -----------------------------------------------------------

AGREEMENT_EXAMPLES: list[dict[str, Any]] = [
    GOOD,
    {
        "ts": "2024-11-20T01:15:30Z",
        "lat": -7.5,
        "lon": 112.2,
        "seq": 3,
        "acc": 5,
        "spd": 0,
        "hdg": 360,
        "bat": 0,
        "seal": "open",
        "fw": "x",
    },
    {"ts": TS, "seal": "tampered", "id": "TRK-0001"},
    {"ts": TS, "lat": 1.0},
    {"ts": TS, "lat": 90.0001, "lon": 0},
    {"ts": TS, "lat": 0, "lon": 180.5},
    {"ts": TS, "acc": -1},
    {"ts": TS, "spd": -0.1},
    {"ts": TS, "hdg": 360.01},
    {"ts": TS, "bat": 100.5},
    {"ts": TS, "seq": -3},
    {"ts": TS, "seq": 2.0},
    {"ts": TS, "seal": "unknown"},
    {"ts": "not a time"},
    {"ts": 946684799},
    {"ts": NOW + 86401},
    {"lat": 1, "lon": 1},
    {"ts": TS, "lat": "1", "lon": 1},
]


@pytest.mark.parametrize("example", AGREEMENT_EXAMPLES, ids=lambda e: json.dumps(e)[:60])
def test_wire_model_agrees_with_decoder(example: dict[str, Any]) -> None:
    d = one(example)
    try:
        model = NativeReading.model_validate(example, context={"now": NOW})
    except ValidationError:
        model = None
    assert (model is not None) == (d.rejections == []), (example, d)
    if model is not None:
        assert model.to_reading("TRK-0001") == d.readings[0]


@pytest.mark.parametrize(
    "example",
    [
        {
            "_type": "location",
            "tst": 1732057200,
            "lat": 1,
            "lon": 2,
            "vel": 5,
            "cog": 10,
            "batt": 50,
            "tid": "x",
        },
        {"_type": "location", "tst": 1732057200, "lat": 1, "lon": 2, "vel": -1, "cog": -1},
        {"_type": "location", "tst": 1732057200},
    ],
)
def test_owntracks_model_agrees_with_decoder(example: dict[str, Any]) -> None:
    d = one(example, topic="owntracks/u/d")
    model = OwnTracksLocation.model_validate(example).to_native()
    assert model.to_reading("u.d") == d.readings[0]


def test_status_model() -> None:
    assert Status.parse(b"online").status == "online"
    with pytest.raises(ValidationError):
        Status.parse(b"sleeping")


def test_json_schema_documents_the_batch() -> None:
    schema = telemetry_json_schema()
    arr = schema["oneOf"][1]
    assert (arr["minItems"], arr["maxItems"]) == (1, 1000)
    props = schema["$defs"]["NativeReading"]["properties"]
    assert {"ts", "lat", "lon", "seq", "id", "acc", "spd", "hdg", "bat", "seal"} <= set(props)
    json.dumps(schema)


# -- nothing a tracker sends can make the decoder raise ---------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(["ts", "lat", "lon", "seq", "id", "acc", "spd", "hdg", "bat", "seal", "x"])
# Values a buggy tracker might put anywhere, unhashable ones included.
readings_like = st.dictionaries(field_names, json_values | st.floats(-200, 200), max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    for topic in (TOPIC, "kawal/v1/T/status", "owntracks/a/b"):
        d = decode_message(topic, payload, NOW)
        assert all(r.reason in REASONS for r in d.rejections)


@settings(max_examples=300, deadline=None)
@given(st.lists(readings_like, min_size=1, max_size=8) | readings_like)
def test_arbitrary_json_never_raises_and_valid_readings_are_sane(doc: Any) -> None:
    d = decode_message(TOPIC, json.dumps(doc).encode(), NOW)
    n = len(doc) if isinstance(doc, list) else 1
    assert len(d.readings) + len(d.rejections) == n
    for r in d.readings:
        assert math.isfinite(r.ts) and 946684800 <= r.ts <= NOW + 86400
        assert (r.lat is None) == (r.lon is None)
        for v in (r.lat, r.lon, r.acc, r.spd, r.hdg, r.bat):
            assert v is None or (isinstance(v, float) and math.isfinite(v))


def test_non_finite_and_huge_times_are_rejected_one_by_one() -> None:
    """A ts that overflows a float, or the strings "nan"/"inf", is one invalid reading; the batch goes on."""
    now = time.time()
    payload = b'[{"ts":1' + b"0" * 400 + b'},{"ts":1700000000,"seq":1},{"ts":"nan"},{"ts":"inf"}]'
    d = decode_message("kawal/v1/T1/telemetry", payload, now)
    assert [r.ts for r in d.readings] == [1700000000.0]
    assert [j.reason for j in d.rejections] == ["not_finite", "bad_ts", "bad_ts"]
