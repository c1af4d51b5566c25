"""Per-tracker detection state: a flat `__slots__` object, cheap to hold for 100,000 trackers.

Everything a detector remembers between readings lives here, so that a snapshot of these objects is the
whole memory of the engine: a restart mid-trip keeps its timers and raises no twin alerts. Unset times
are NaN (shared singleton, so an idle tracker allocates no float objects).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from array import array
from collections.abc import Collection
from itertools import chain
from operator import attrgetter
from typing import Any

NAN = math.nan
NEG_INF = -math.inf

# Seal state codes, in order of severity.
SEAL_UNKNOWN, SEAL_CLOSED, SEAL_OPEN, SEAL_TAMPERED = 0, 1, 2, 3
SEAL_CODES: dict[str, int] = {"closed": SEAL_CLOSED, "open": SEAL_OPEN, "tampered": SEAL_TAMPERED}
SEAL_NAMES: dict[int, str | None] = {0: None, 1: "closed", 2: "open", 3: "tampered"}
SEAL_EPISODES_KEPT = 8


class TrackerState:
    __slots__ = (  # noqa: RUF023 - grouped by detector; the snapshot names its fields
        # identity, event time, bookkeeping
        "tid",
        "trip",  # trip id the tracker is bound to, as last evaluated
        "last_ts",  # event time of the latest in-order reading
        "last_seq",
        "active",  # bit per AlertType: raised by us and not yet resolved
        "sched",  # timer bucket (whole seconds) the tracker is queued in, 0 when none
        "status",  # last MQTT status (online / offline) and when
        "status_at",
        # last accepted fix
        "fx_ts",
        "fx_lat",
        "fx_lon",
        "fx_acc",
        "hint",  # route segment last matched
        # gps jump: the last rejected fix and how many rejected fixes agree with it
        "jp_ts",
        "jp_lat",
        "jp_lon",
        "jp_n",
        "jp_km",  # distance (km) and speed (km/h) of the jump that raised the alert
        "jp_kmh",
        # seal
        "seal",
        "seal_ts",
        "seal_eps",  # recent open episodes [(start, end)], to place late seal readings; None when none
        # route deviation
        "dv_n",
        "dv_ts",
        "dv_lat",
        "dv_lon",
        "dv_in",
        "dv_d",
        # stop cluster (shared by unscheduled_stop, wrong_destination)
        "sc_lat",
        "sc_lon",
        "sc_n",
        "sc_ts",
        "sc_last",
        "sc_out",
        "sc_olat",
        "sc_olon",
        "sc_ots",
        "sc_cls",  # -1 not classified yet, else motion.STOP_* class
        # arrival
        "dest_since",
        "arrived",
        # storage movement
        "mv_n",
        "mv_ts",
        "mv_lat",
        "mv_lon",
        "mv_in",
        "mv_d",
        # fix_lost: last usable fix, first reading without one since, and how many (appended, issue 17)
        "uf_ts",
        "nf_ts",
        "nf_n",
        # spoofing_suspected: evidence kinds raised this trip, highest seq seen, speed/heading checks,
        # noise signature (the trip's share of clean rest fixes and their count, the tracker's own
        # baseline), and
        # the replay run (the last quantised cells)
        "sp_ev",
        "sq_hi",
        "kn_spd",
        "kn_hdg",
        "kn_n",
        "kn_bad",
        "nz_avg",
        "nz_n",
        "nz_base",
        "nz_bn",
        "rp_win",
        "rp_lat",
        "rp_lon",
    )

    def __init__(self, tid: str) -> None:
        self.tid = tid
        self.trip: str | None = None
        self.last_ts = NEG_INF
        self.last_seq = -2
        self.active = 0
        self.sched = 0
        self.status: str | None = None
        self.status_at = NAN
        self.fx_ts = NAN
        self.fx_lat = NAN
        self.fx_lon = NAN
        self.fx_acc = NAN
        self.hint = 0
        self.jp_ts = NAN
        self.jp_lat = NAN
        self.jp_lon = NAN
        self.jp_n = 0
        self.jp_km = NAN
        self.jp_kmh = NAN
        self.seal = SEAL_UNKNOWN
        self.seal_ts = NAN
        self.seal_eps: list[list[float]] | None = None
        self.uf_ts = NAN
        self.sq_hi = NAN
        self.nz_base = NAN
        self.nz_bn = 0
        self.rp_win: str | None = None  # the replay run: 8 hex digits per cell
        self.rp_lat = NAN
        self.rp_lon = NAN
        self.reset_trip()
        self.reset_cluster()

    def reset_trip(self) -> None:
        """Forget everything that belongs to one trip (on a change of trip)."""
        self.hint = 0
        self.dv_n = 0
        self.dv_ts = NAN
        self.dv_lat = NAN
        self.dv_lon = NAN
        self.dv_in = 0
        self.dv_d = NAN
        self.dest_since = NAN
        self.arrived = NAN
        self.mv_n = 0
        self.mv_ts = NAN
        self.mv_lat = NAN
        self.mv_lon = NAN
        self.mv_in = 0
        self.mv_d = NAN
        self.sc_cls = -1
        self.nf_ts = NAN
        self.nf_n = 0
        self.sp_ev = 0
        self.kn_spd = NAN
        self.kn_hdg = NAN
        self.kn_n = 0
        self.kn_bad = 0
        self.reset_noise()

    def reset_noise(self) -> None:
        """The trip's noise signature (the baseline is the receiver's and stays)."""
        self.nz_avg = NAN
        self.nz_n = 0

    def reset_cluster(self) -> None:
        self.sc_lat = NAN
        self.sc_lon = NAN
        self.sc_n = 0
        self.sc_ts = NAN
        self.sc_last = NAN
        self.sc_out = 0
        self.sc_olat = NAN
        self.sc_olon = NAN
        self.sc_ots = NAN
        self.sc_cls = -1

    @property
    def has_fix(self) -> bool:
        return self.fx_ts == self.fx_ts  # not NaN

    def add_seal_episode(self, start: float, end: float) -> None:
        eps = self.seal_eps
        if eps is None:
            eps = self.seal_eps = []
        eps.append([start, end])
        if len(eps) > SEAL_EPISODES_KEPT:
            del eps[0]

    def close_seal_episode(self, end: float) -> None:
        if self.seal_eps:
            last = self.seal_eps[-1]
            if last[1] == math.inf:
                last[1] = end

    def in_seal_episode(self, ts: float) -> bool:
        return self.seal_eps is not None and any(s <= ts <= e for s, e in self.seal_eps)


# ---- snapshot codec ----------------------------------------------------------------------------------
# Row-major packed arrays: every tracker's float fields as float64, its small integers as int64, and the
# few text/list fields as JSON. One C-level attrgetter call per tracker and field group keeps 100,000
# trackers well under a second (JSON of ~5 million floats took seconds).

SNAPSHOT_MAGIC = b"KWDS2"
INT_FIELDS = (
    "active",
    "sched",
    "hint",
    "jp_n",
    "seal",
    "dv_n",
    "dv_in",
    "sc_n",
    "sc_out",
    "sc_cls",
    "mv_n",
    "mv_in",
    # issue 17, appended
    "nf_n",
    "sp_ev",
    "kn_n",
    "kn_bad",
    "nz_n",
    "nz_bn",
)
# last_seq: a tracker's seq may exceed 2**63; rp_win: None for a tracker that never moved
OBJ_FIELDS = ("tid", "trip", "status", "last_seq", "seal_eps", "rp_win")
FLOAT_FIELDS = tuple(n for n in TrackerState.__slots__ if n not in INT_FIELDS and n not in OBJ_FIELDS)
_HEAD = struct.Struct("<II")


def encode_states(states: Collection[TrackerState]) -> bytes:
    rows = list(states)
    header = {"n": len(rows), "float": FLOAT_FIELDS, "int": INT_FIELDS, "obj": OBJ_FIELDS}
    head = json.dumps(header).encode()
    body = json.dumps(list(map(attrgetter(*OBJ_FIELDS), rows)), separators=(",", ":")).encode()
    floats = array("d", chain.from_iterable(map(attrgetter(*FLOAT_FIELDS), rows)))
    ints = array("q", chain.from_iterable(map(attrgetter(*INT_FIELDS), rows)))
    blob = b"".join([SNAPSHOT_MAGIC, _HEAD.pack(len(head), len(body)), head, body, floats.tobytes(), ints.tobytes()])
    return zlib.compress(blob, 1)


def decode_states(data: bytes) -> list[TrackerState]:
    """Raises ValueError on anything it cannot read. Fields it does not know are skipped; fields the
    snapshot lacks (written by another version) keep their defaults."""
    try:
        raw = zlib.decompress(data)
        if not raw.startswith(SNAPSHOT_MAGIC):
            raise ValueError("not a detector snapshot")
        at = len(SNAPSHOT_MAGIC)
        hlen, blen = _HEAD.unpack_from(raw, at)
        at += _HEAD.size
        header = json.loads(raw[at : at + hlen])
        at += hlen
        objs = json.loads(raw[at : at + blen])
        at += blen
        n = int(header["n"])
        groups: list[tuple[list[str], list[Any]]] = []
        for kind, code in (("float", "d"), ("int", "q")):
            names = list(header[kind])
            size = 8 * n * len(names)
            col = array(code)
            col.frombytes(raw[at : at + size])
            at += size
            if len(col) != n * len(names):
                raise ValueError(f"snapshot {kind} fields are truncated")
            values = [x if x == x else NAN for x in col] if code == "d" else col.tolist()
            groups.append((names, values))
        obj_names = list(header["obj"])
        if not isinstance(objs, list) or len(objs) != n:
            raise ValueError("snapshot text fields are malformed")
        groups.append((obj_names, [v for row in objs for v in row]))
        if any(len(values) != n * len(names) for names, values in groups):
            raise ValueError("snapshot rows have the wrong number of fields")
    except (zlib.error, struct.error, KeyError, TypeError) as e:
        raise ValueError(f"unreadable detector snapshot: {e}") from e
    if "tid" not in obj_names:
        raise ValueError("detector snapshot without tracker ids")
    tid_at = obj_names.index("tid")
    slots = set(TrackerState.__slots__) - {"tid", "sched"}
    # Per group: its row width, and the (position, name) of the fields this version has, found once.
    plan = [
        (len(names), [(j, name) for j, name in enumerate(names) if name in slots], values) for names, values in groups
    ]
    tids = groups[2][1]
    width = len(obj_names)
    out = []
    for i in range(n):
        tid = tids[i * width + tid_at]
        if not isinstance(tid, str):
            raise ValueError("detector snapshot with a bad tracker id")
        st = TrackerState(tid)
        for k, kept, values in plan:
            base = i * k
            for j, name in kept:
                setattr(st, name, values[base + j])
        if st.seal_eps is not None:
            st.seal_eps = [[float(a), float(b)] for a, b in st.seal_eps]
        if st.rp_win is not None and not isinstance(st.rp_win, str):
            st.rp_win = None  # not a run this version wrote: start a new one
        out.append(st)
    return out
