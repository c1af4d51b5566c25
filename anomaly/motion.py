"""Stationarity, shared by unscheduled_stop and wrong_destination.

A stop is a cluster of accepted fixes within `stop_radius_m` (widened for poor accuracy) of the cluster's
centre. The centre is the running mean of the first `stop_centroid_window` fixes and then stays put, so GPS
noise averages out while a crate creeping away still leaves the radius. The stop ends only after
`stop_exit_count` consecutive fixes outside the radius: one bad fix never breaks it. This is Traccar's
MotionEventHandler idea (a state that changes only after a distance or a duration), made noise-aware.

A stop lasts as long as its fixes say, from the first to the latest fix inside the radius: it is never
extrapolated past the latest fix, so a tracker that falls silent is not taken for a stopped one (the crate
may be driving; the silence is signal_lost's business), and the outcome is the same whether a tick comes
during the silence or the next fix arrives first. A gap longer than the trip's max_silence between two fixes
of the cluster is a silence, not evidence of rest: the stop starts again at the fix after it.
"""

from __future__ import annotations

from anomaly.base import Ctx
from anomaly.config import DetectionConfig
from anomaly.state import TrackerState
from kawal.geodesy import distance_m

STOP_ALLOWED = 0  # origin, destination or an allowed stop of the crate's own trip
STOP_FOREIGN = 1  # another trip's origin or destination zone
STOP_UNSCHEDULED = 2


def update_cluster(
    cfg: DetectionConfig, st: TrackerState, lat: float, lon: float, acc: float, ts: float, max_gap: float
) -> bool:
    """Add an accepted fix to the stop cluster. True when this fix shows the crate moved on.

    `max_gap`: the longest silence the stop bridges (the trip's max_silence); after a longer one the stop
    starts again at this fix, without "moving on" (an open stop alert stays open)."""
    if st.sc_n == 0:
        _start(st, lat, lon, ts)
        return False
    radius = cfg.stop_radius_m
    if cfg.stop_acc_factor * acc > radius:
        radius = cfg.stop_acc_factor * acc
    if distance_m(st.sc_lat, st.sc_lon, lat, lon) <= radius:
        if ts - st.sc_last > max_gap:
            _start(st, lat, lon, ts)
            return False
        st.sc_out = 0
        st.sc_last = ts
        n = st.sc_n
        if n < cfg.stop_centroid_window:
            n += 1
            st.sc_lat += (lat - st.sc_lat) / n
            st.sc_lon += (lon - st.sc_lon) / n
            st.sc_n = n
        return False
    st.sc_out += 1
    if st.sc_out == 1:
        st.sc_olat, st.sc_olon, st.sc_ots = lat, lon, ts
    if st.sc_out < cfg.stop_exit_count:
        return False
    # Moved on. The new cluster starts at the first fix that left, if this one is still near it.
    olat, olon, ots = st.sc_olat, st.sc_olon, st.sc_ots
    st.reset_cluster()
    if ots != ts and distance_m(olat, olon, lat, lon) <= radius:
        _start(st, olat, olon, ots)
        st.sc_n = 2
        st.sc_lat = (olat + lat) * 0.5
        st.sc_lon = (olon + lon) * 0.5
        st.sc_last = ts
    else:
        _start(st, lat, lon, ts)
    return True


def _start(st: TrackerState, lat: float, lon: float, ts: float) -> None:
    st.sc_lat = lat
    st.sc_lon = lon
    st.sc_n = 1
    st.sc_ts = ts
    st.sc_last = ts
    st.sc_out = 0
    st.sc_cls = -1


def stop_start(c: Ctx, st: TrackerState) -> float:
    """When the current stop began, for the trip in transit (never before departure)."""
    plan = c.plan
    assert plan is not None
    return st.sc_ts if st.sc_ts > plan.depart_after else plan.depart_after


def stop_duration(c: Ctx, st: TrackerState) -> float:
    """How long the fixes show the crate at rest: from the stop's start to its latest fix."""
    return st.sc_last - stop_start(c, st)


def long_stop(c: Ctx, st: TrackerState) -> bool:
    """The crate's fixes have kept it in its stop cluster for more than the trip's max_stop_min."""
    plan = c.plan
    if plan is None or st.sc_n == 0:
        return False
    return stop_duration(c, st) > plan.max_stop_s


def classify(c: Ctx, st: TrackerState) -> int:
    """Where the crate stopped, computed once per stop."""
    if st.sc_cls >= 0:
        return int(st.sc_cls)
    plan = c.plan
    assert plan is not None
    cfg = c.cfg
    x, y = plan.frame.to_xy(st.sc_lat, st.sc_lon)
    margin = cfg.zone_margin_m
    cls = STOP_UNSCHEDULED
    for zone in (plan.origin, plan.dest, *plan.stops):
        if zone.dist(x, y) <= zone.r + margin:
            cls = STOP_ALLOWED
            break
    else:
        if foreign_zones(c, st):
            cls = STOP_FOREIGN
    st.sc_cls = cls
    return cls


def foreign_zones(c: Ctx, st: TrackerState) -> list[tuple[str, str, str]]:
    """(zone name, trip id, origin|destination) of other trips' zones around the stop."""
    plan = c.plan
    assert plan is not None
    out: list[tuple[str, str, str]] = []
    for e in c.zones.containing(st.sc_lat, st.sc_lon, c.cfg.zone_margin_m):
        for trip_id, kind in e.owners:
            if trip_id != plan.trip_id:
                out.append((e.name, trip_id, kind))
                if len(out) >= 5:
                    return out
    return out
