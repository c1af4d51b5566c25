"""Crate status: which tracker and trip a crate has now, where it was last seen, and its state.

The state is a view for people (dashboard, summary), computed from the trip and the latest fix:
`alerting` when the crate's tracker has an unresolved alert; else `in_storage` before the trip's
`depart_after` (or with no trip); `arrived` when the latest fix since departure is inside the destination
zone; otherwise `in_transit`. The detectors keep the authoritative arrival timers; this view needs only
stored data, so it is the same in every process reading the database.

It takes a constant number of queries, whatever the number of crates: the trackers' latest state is
materialised by ingest (ingest/latest.py), so the whole fleet is one join of trips x trackers (index only
on trips), one query for crates bound only in the registry, and one grouped count of open alerts; one
crate is two or three indexed lookups. The few trip fields the view needs (destination zone, district,
depart_after) come from each trip's JSON body, read once per trip version and cached; a crate whose data
did not change since the last computation keeps its row and its built `Crate`. The trip side: api/crate_trips.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import Any

from api.crate_trips import N_STAMP, N_TRIP_INFO, STAMP, TRIP_INFO, TripInfo, TripInfoCache, trip_info
from api.deps import AppContext
from api.geography import kecamatan_counts
from api.schemas import CRATE_STATES, Crate, CrateList, CrateState, DistrictCount, Fix, Summary, TrackPoint
from devices.reading import Reading
from kawal.geodesy import distance_m
from kawal.places import Place, Places
from kawal.timeutil import rfc3339
from kawal.trips import bound_trip

# The state columns of a tracker, prefixed for a join (k = trackers).
# The tracker state the view shows (ingest/latest.py keeps it; the seq columns only order it), and the
# positions of its values in a row's `tracker_state`.
_K_STATE = (
    "k.tracker_id, k.last_seen, k.fix_ts, k.fix_lat, k.fix_lon, k.fix_acc, k.fix_spd, k.fix_hdg, k.fix_bat,"
    " k.seal, k.seal_ts, k.seq_missing"
)
_LAST_SEEN, _FIX_TS, _LAT, _LON, _ACC, _SPD, _HDG, _BAT, _SEAL, _SEAL_TS, _SEQ_MISSING = range(1, 12)
_OPEN = "status != 'resolved'"  # unresolved, as the alerts_one_open index has it


def fix_out(r: Reading) -> Fix:
    assert r.lat is not None and r.lon is not None
    return Fix(ts=rfc3339(r.ts) or "", lat=r.lat, lon=r.lon, acc=r.acc, spd=r.spd, hdg=r.hdg, bat=r.bat)


def track_point(r: Reading) -> TrackPoint:
    return TrackPoint(**fix_out(r).model_dump(), seal=r.seal)


# -- crates --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class CrateRow:
    """One crate of the fleet view: what filters and counts need, and the tracker state to build its
    `Crate` when it is on the page asked for."""

    crate_id: str
    tracker_id: str | None
    trip: TripInfo | None
    state: CrateState
    open_alerts: int
    tracker_state: Sequence[Any] | None  # the _K_STATE values of its tracker, or None
    place: Place | None = None  # the kecamatan and desa of its latest fix (kawal/places.py)
    source: tuple[Any, ...] = ()  # the joined row it was computed from (a crate with one trip)
    built: Crate | None = None  # the Crate, once asked for; reused while nothing above changes

    @property
    def district(self) -> str | None:
        return self.trip.district if self.trip is not None else None

    def same_as(self, other: CrateRow) -> bool:
        """Everything its Crate is made of is equal."""
        return (
            self.state == other.state
            and self.open_alerts == other.open_alerts
            and self.tracker_id == other.tracker_id
            and self.tracker_state == other.tracker_state
            and self.trip == other.trip
        )

    def to_crate(self) -> Crate:
        if self.built is None:  # a race between two requests only builds it twice
            self.built = self._build()
        return self.built

    def _build(self) -> Crate:
        k = self.tracker_state
        trip = self.trip
        last_seen = seal = seal_at = fix = seq_missing = None
        if k is not None:
            last_seen = rfc3339(k[_LAST_SEEN])
            seq_missing = k[_SEQ_MISSING]
            if k[_FIX_TS] is not None:
                fix = Fix(
                    ts=rfc3339(k[_FIX_TS]) or "",
                    lat=k[_LAT],
                    lon=k[_LON],
                    acc=k[_ACC],
                    spd=k[_SPD],
                    hdg=k[_HDG],
                    bat=k[_BAT],
                )
            if k[_SEAL_TS] is not None:
                seal, seal_at = k[_SEAL], rfc3339(k[_SEAL_TS])
        return Crate(
            crate_id=self.crate_id,
            tracker_id=self.tracker_id,
            trip_id=trip.trip_id if trip is not None else None,
            last_seen=last_seen,
            seal=seal,
            last_fix=fix,
            seal_at=seal_at,
            state=self.state,
            district=trip.district if trip is not None else None,
            destination=trip.destination if trip is not None else None,
            open_alerts=self.open_alerts,
            place=self.place,
            seq_missing=seq_missing,
        )


def crate_state(trip: TripInfo | None, tracker_state: Sequence[Any] | None, open_alerts: int, now: float) -> CrateState:
    if open_alerts > 0:
        return "alerting"
    if trip is None or now < trip.depart_after:
        return "in_storage"
    if trip.handover_at is not None and now >= trip.handover_at:
        return "arrived"  # signed for: the crate is in storage at its destination
    k = tracker_state
    if (
        k is not None
        and k[_FIX_TS] is not None  # the latest fix, since departure, inside the destination zone
        and k[_FIX_TS] >= trip.depart_after
        and distance_m(k[_LAT], k[_LON], trip.dest_lat, trip.dest_lon) <= trip.dest_radius_m
    ):
        return "arrived"
    return "in_transit"


def _row(
    crate_id: str,
    trip: TripInfo | None,
    tracker_id: str | None,
    tracker_state: Sequence[Any] | None,
    open_counts: dict[str, int],
    now: float,
    places: Places,
) -> CrateRow:
    n_open = open_counts.get(tracker_id, 0) if tracker_id is not None else 0
    if tracker_state is not None and tracker_state[0] is None:
        tracker_state = None  # LEFT JOIN without a trackers row
    state = crate_state(trip, tracker_state, n_open, now)
    place = None
    if tracker_state is not None and tracker_state[_FIX_TS] is not None:
        place = places.lookup(tracker_state[_LAT], tracker_state[_LON])
    return CrateRow(crate_id, tracker_id, trip, state, n_open, tracker_state, place)


def _registry_crates(conn: Any, crate_id: str | None = None) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(crate, tracker, tracker state) for crates bound to a tracker in the registry: the first tracker by
    id when several are bound to one crate (chosen here, so it is the same whatever the collation)."""
    where = "k.crate_id IS NOT NULL AND k.crate_id != ''" + (" AND k.crate_id = ?" if crate_id else "")
    rows = conn.execute(f"SELECT k.crate_id, {_K_STATE} FROM trackers k WHERE {where}", (crate_id,) if crate_id else ())
    first: dict[str, tuple[Any, ...]] = {}
    for r in rows:
        crate, state = str(r[0]), tuple(r[1:])
        if (had := first.get(crate)) is None or state[0] < had[0]:
            first[crate] = state
    return sorted((crate, str(state[0]), state) for crate, state in first.items())


@dataclass(slots=True)
class Fleet:
    """Every crate (from trips and tracker bindings) by id, with the time its states were computed for."""

    crates: list[CrateRow]
    at: float
    by_id: dict[str, CrateRow] = field(default_factory=dict)
    _counts: tuple[dict[str, int], dict[str | None, dict[str, int]]] | None = None

    def counts(self) -> tuple[dict[str, int], dict[str | None, dict[str, int]]]:
        """Crates per state, and per district and state; computed once per fleet."""
        if self._counts is None:
            by_state: dict[str, int] = dict.fromkeys(CRATE_STATES, 0)
            districts: dict[str | None, dict[str, int]] = {}
            for c in self.crates:
                by_state[c.state] += 1
                name = c.district
                d = districts.get(name)
                if d is None:
                    d = districts[name] = dict.fromkeys(CRATE_STATES, 0)
                d[c.state] += 1
            self._counts = (by_state, districts)
        return self._counts


def all_crates(ctx: AppContext, trips: TripInfoCache | None = None, previous: Fleet | None = None) -> Fleet:
    """The whole fleet in four queries: trips x trackers (index only on trips), the bodies of trips that
    changed since `trips` last saw them, registry bindings, open alerts per tracker. A crate equal to its
    row in `previous` keeps the Crate built for it there."""
    now = ctx.clock.now()
    trips = trips if trips is not None else TripInfoCache()
    with ctx.db.read() as conn:  # one snapshot for the four queries
        cur = conn.plain_cursor()  # plain tuples: the fleet is many rows
        joined = cur.execute(
            f"SELECT {STAMP}, {_K_STATE} FROM trips t LEFT JOIN trackers k ON k.tracker_id = t.tracker_id"
            " ORDER BY t.crate_id, t.depart_after, t.trip_id"
        ).fetchall()
        info = trips.resolve(conn, joined)
        registry = _registry_crates(cur)
        open_counts = ctx.alerts.open_counts()
    # A crate with one trip whose joined row, trip body and open alerts are as they were, and for which
    # `now` crossed no departure, is the same as before: its row (and its built Crate) is taken over as is,
    # so a steady fleet costs a comparison per crate. Anything else is computed again.
    old = previous.by_id if previous is not None else {}
    then = previous.at if previous is not None else now
    rows: list[CrateRow] = []
    for crate_id, group in groupby(joined, key=itemgetter(2)):
        members = list(group)
        r = members[0]
        if len(members) == 1:
            trip = info[r[0]]
            was = old.get(crate_id)
            if (
                was is not None
                and was.source == r
                and was.trip is trip
                and was.open_alerts == open_counts.get(trip.tracker_id, 0)
                and (then < trip.depart_after) == (now < trip.depart_after)
            ):
                rows.append(was)
                continue
        else:  # several trips: the one bound now
            t = bound_trip([info[m[0]] for m in members], now)
            r = next(m for m in members if t is not None and m[0] == t.trip_id)
            trip = info[r[0]]
        row = _row(crate_id, trip, trip.tracker_id, r[N_STAMP:], open_counts, now, ctx.places)
        row.source = r if len(members) == 1 else ()
        rows.append(row)
    with_trips = {c.crate_id for c in rows}
    for crate_id, tracker_id, k in registry:
        if crate_id not in with_trips:
            rows.append(_row(crate_id, None, tracker_id, k, open_counts, now, ctx.places))
    rows.sort(key=attrgetter("crate_id"))
    for c in rows:  # computed again but equal: keep the Crate built before
        if c.built is None and (was := old.get(c.crate_id)) is not None and was.built is not None and c.same_as(was):
            c.built = was.built
    return Fleet(rows, now, {c.crate_id: c for c in rows})


def one_crate(ctx: AppContext, crate_id: str) -> Crate | None:
    """One crate in at most three queries (its trips with their tracker's state, else its registry
    binding; its tracker's open alerts)."""
    now = ctx.clock.now()
    conn = ctx.db.conn()
    joined = conn.execute(
        f"SELECT {TRIP_INFO}, {_K_STATE} FROM trips t LEFT JOIN trackers k ON k.tracker_id = t.tracker_id"
        " WHERE t.crate_id = ?",
        (crate_id,),
    ).fetchall()
    trip: TripInfo | None = None
    if joined:
        infos = [(trip_info(r), tuple(r[N_TRIP_INFO:])) for r in joined]
        trip = bound_trip([i for i, _ in infos], now)
        tracker_id: str | None = trip.tracker_id if trip is not None else None
        k: tuple[Any, ...] | None = next(s for i, s in infos if i is trip)
    else:
        reg = _registry_crates(conn, crate_id)
        if not reg:
            return None
        _, tracker_id, k = reg[0]
    n_open = 0
    if tracker_id is not None:
        n_open = int(
            conn.execute(f"SELECT count(*) FROM alerts WHERE tracker_id = ? AND {_OPEN}", (tracker_id,)).fetchone()[0]
        )
    counts = {tracker_id: n_open} if tracker_id else {}
    return _row(crate_id, trip, tracker_id, k, counts, now, ctx.places).to_crate()


def crate_page(
    fleet: Fleet,
    states: Iterable[CrateState] | None = None,
    district: str | None = None,
    limit: int = 10_000,
    offset: int = 0,
    kecamatan: str | None = None,
) -> CrateList:
    """A page of the fleet; `Crate`s are built only for the page (and kept for the next request)."""
    rows: list[CrateRow] = fleet.crates
    wanted = set(states) if states else None
    if wanted is not None:
        rows = [c for c in rows if c.state in wanted]
    if district is not None:
        rows = [c for c in rows if c.district == district]
    if kecamatan is not None:  # where the crate is (its latest fix), by the kecamatan's name
        rows = [c for c in rows if c.place is not None and c.place["kecamatan"] == kecamatan]
    return CrateList(items=[c.to_crate() for c in rows[offset : offset + limit]], total=len(rows))


def summarise(ctx: AppContext, fleet: Fleet) -> Summary:
    by_state, districts = fleet.counts()
    open_by_type = ctx.alerts.open_by_type()
    return Summary(
        total=len(fleet.crates),
        by_state=dict(by_state),
        by_district=[
            DistrictCount(district=name, total=sum(counts.values()), by_state=dict(counts))
            for name, counts in sorted(districts.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ],
        open_alerts=sum(open_by_type.values()),
        open_alerts_by_type=open_by_type,
        by_kecamatan=kecamatan_counts(fleet.crates, ctx.places, ctx.alerts.open_by_kecamatan()),
        at=rfc3339(fleet.at) or "",
    )


class CrateCache:
    """The fleet, recomputed at most every `ttl_s` seconds, so many open dashboards cost one computation
    (a few queries, plus the bodies of trips that changed since the last one)."""

    def __init__(self, ttl_s: float = 2.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: Fleet | None = None
        self._last: Fleet | None = None  # kept through invalidate(): its built Crates are reused if equal
        self._expires = 0.0
        self._trips = TripInfoCache()

    def get(self, ctx: AppContext) -> Fleet:
        with self._lock:  # one computation at a time; the others wait for its result
            if self._value is None or self._monotonic() >= self._expires:
                self._value = self._last = all_crates(ctx, self._trips, self._last)
                self._expires = self._monotonic() + self.ttl_s
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._value = None
