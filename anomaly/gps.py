"""GPS filtering before any movement detector sees a fix, in the spirit of Traccar's filter.* keys.

Each in-order reading with a position is screened against the tracker's last *accepted* fix. Only
FIX_OK fixes reach route_deviation, the stop cluster, arrival and unexpected_movement. A rejected fix is
still a reading: it counts as signal, and its seal and battery are still read.
"""

from __future__ import annotations

import math

from anomaly.config import DetectionConfig
from anomaly.state import TrackerState
from devices.reading import Reading
from kawal.geodesy import distance_m

FIX_NONE = 0  # no position, or Null Island (Traccar filter.zero)
FIX_OK = 1
FIX_POOR = 2  # reported accuracy worse than max_acc_m (filter.accuracy)
FIX_STALE = 3  # exactly the last accepted position again: a re-sent fix, not a new one (filter.duplicate)
FIX_JUMP = 4  # implied speed from the last accepted fix is impossible (filter.maxSpeed)
FIX_INVALID = 5  # out of range or not finite (filter.invalid); decode rejects these first

FIX_NAMES = {
    FIX_NONE: "fix_none",
    FIX_OK: "fix_ok",
    FIX_POOR: "fix_poor_accuracy",
    FIX_STALE: "fix_repeated",
    FIX_JUMP: "fix_jump",
    FIX_INVALID: "fix_invalid",
}


def screen(cfg: DetectionConfig, st: TrackerState, r: Reading) -> int:
    """Classify the reading's fix; on FIX_OK the tracker's last accepted fix becomes this one."""
    lat = r.lat
    lon = r.lon
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        return FIX_NONE
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):  # also False for NaN
        return FIX_INVALID
    acc = cfg.default_acc_m if r.acc is None else r.acc
    if not acc <= cfg.max_acc_m:
        return FIX_POOR
    if lat == st.fx_lat and lon == st.fx_lon:
        return FIX_STALE
    ts = r.ts
    if st.fx_ts == st.fx_ts:  # there is an accepted fix to compare with
        d = distance_m(st.fx_lat, st.fx_lon, lat, lon)
        dt = ts - st.fx_ts
        if dt < 1.0:
            dt = 1.0
        slack = cfg.jump_acc_factor * (acc + st.fx_acc)
        if (d - slack) * 3.6 > cfg.max_speed_kmh * dt:
            return _rejected(cfg, st, r, lat, lon, acc, d, dt)
    st.fx_ts = ts
    st.fx_lat = lat
    st.fx_lon = lon
    st.fx_acc = acc
    st.jp_n = 0
    return FIX_OK


def _rejected(
    cfg: DetectionConfig,
    st: TrackerState,
    r: Reading,
    lat: float,
    lon: float,
    acc: float,
    d: float,
    dt: float,
) -> int:
    # Does this fix agree with the previous rejected one? Then several fixes say the crate is here, and it is
    # the anchor that was wrong (for instance a bad first fix): move the anchor instead of rejecting forever.
    if st.jp_n > 0 and st.jp_ts == st.jp_ts:
        d_prev = distance_m(st.jp_lat, st.jp_lon, lat, lon)
        dt_prev = max(r.ts - st.jp_ts, 1.0)
        slack = cfg.jump_acc_factor * (acc + cfg.default_acc_m)
        consistent = (d_prev - slack) * 3.6 <= cfg.max_speed_kmh * dt_prev
        st.jp_n = st.jp_n + 1 if consistent else 1
    else:
        st.jp_n = 1
    st.jp_ts = r.ts
    st.jp_lat = lat
    st.jp_lon = lon
    if st.jp_n >= cfg.jump_reanchor_count:
        st.fx_ts = r.ts
        st.fx_lat = lat
        st.fx_lon = lon
        st.fx_acc = acc
        st.jp_n = 0
        return FIX_OK
    st.jp_km = round(d / 1000.0, 3)
    st.jp_kmh = round(d * 3.6 / dt, 1) if math.isfinite(d) else math.inf
    return FIX_JUMP
