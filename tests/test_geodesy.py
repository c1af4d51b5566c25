"""One geodesy: the detector, the API and the simulator measure the same distance the same way."""

from __future__ import annotations

import random

import pytest

import anomaly.geometry
import anomaly.zones
import api.crates
from kawal import geodesy
from kawal.geodesy import LocalFrame, distance_m, great_circle_m, offset

JOMBANG = (-7.546, 112.233)


def test_equirectangular_within_a_tenth_of_a_percent_of_the_great_circle_at_trip_scale() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        lat = rng.uniform(-11.0, 6.0)  # Indonesia
        lon = rng.uniform(95.0, 141.0)
        d = rng.uniform(1.0, 50_000.0)
        lat2, lon2 = offset(lat, lon, d * rng.uniform(-1, 1), d * rng.uniform(-1, 1))
        ref = great_circle_m(lat, lon, lat2, lon2)
        assert distance_m(lat, lon, lat2, lon2) == pytest.approx(ref, rel=1e-3, abs=0.01)


def test_known_distance() -> None:
    # One degree of latitude on the IUGG mean sphere.
    assert distance_m(0.0, 110.0, 1.0, 110.0) == pytest.approx(111_195.08, abs=0.01)
    assert great_circle_m(0.0, 110.0, 1.0, 110.0) == pytest.approx(111_195.08, abs=0.01)


def test_frame_round_trip_and_agrees_with_distance() -> None:
    frame = LocalFrame(*JOMBANG)
    lat, lon = offset(*JOMBANG, 1200.0, -3400.0)
    x, y = frame.to_xy(lat, lon)
    assert (x, y) == pytest.approx((1200.0, -3400.0), abs=1e-6)
    assert frame.to_latlon(x, y) == pytest.approx((lat, lon), abs=1e-12)
    assert (x * x + y * y) ** 0.5 == pytest.approx(distance_m(*JOMBANG, lat, lon), rel=1e-4)


def test_api_and_detector_use_the_one_function() -> None:
    """The crate view's "arrived" and the detector's zones call the same distance, so they cannot disagree."""
    assert api.crates.distance_m is geodesy.distance_m
    assert anomaly.zones.distance_m is geodesy.distance_m
    assert anomaly.geometry.LocalFrame is geodesy.LocalFrame
