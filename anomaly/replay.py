"""A bounded index of runs of quantised fixes, to recognise a track that was seen before.

A replay (yesterday's recorded trip published again with the tracker's credentials, shifted to today)
copies positions exactly; only the times change. Each accepted moving fix is quantised to a cell of
`replay_cell_deg`, and the last `replay_run` cells of a tracker are hashed (positions only, so the hash
is the same after any time shift). One run in `replay_sample`, chosen by its hash (a replay samples the
same runs), is stored with the tracker and time that produced it; every run is looked up, one dict access.
The index keeps the newest `replay_index_max` runs: memory is bounded and nothing is ever scanned.

Honest drives on the same road do not collide: GPS noise (sigma 2-6 m) and where along the road each fix
fell (a 30 s interval at 40 km/h is 330 m) put their fixes in other 2 m cells.
"""

from __future__ import annotations

import json
import zlib
from array import array
from collections import deque


def cell(lat: float, lon: float, q: float) -> int:
    """One int per cell (exact for a copied position, whatever the time)."""
    return round(lat / q) * 33_554_432 + round(lon / q)  # 2**25 > 180 / 2e-5 columns


class ReplayIndex:
    """run hash -> (tracker id, event time) of the first time the run was seen; oldest dropped first.

    Compact: the value is one int (tracker number << 34 | whole seconds), the order a deque of hashes;
    about 150 B per run in all (an OrderedDict of tuples took 220 B).
    """

    __slots__ = ("_names", "_number", "_order", "_runs", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._runs: dict[int, int] = {}
        self._order: deque[int] = deque()
        self._names: list[str] = []
        self._number: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._runs)

    def get(self, h: int) -> tuple[str, float] | None:
        v = self._runs.get(h)
        if v is None:
            return None
        return self._names[v >> 34], float(v & 0x3_FFFF_FFFF)

    def add(self, h: int, tracker_id: str, ts: float) -> None:
        runs = self._runs
        if h in runs:
            return
        no = self._number.get(tracker_id)
        if no is None:
            no = self._number[tracker_id] = len(self._names)
            self._names.append(tracker_id)
        runs[h] = (no << 34) | (int(ts) & 0x3_FFFF_FFFF)
        self._order.append(h)
        while len(runs) > self.limit:
            del runs[self._order.popleft()]

    # ---- persistence (kawal/detection.py saves it with the detector snapshots) ---------------------------
    def capture(self) -> ReplayCapture:
        """A copy of the runs, cheap enough to take under the engine's lock; encode it outside (a dump of
        300,000 runs takes 150+ ms, the copy about a fifth of that)."""
        order = list(self._order)
        runs = self._runs
        return ReplayCapture(order, [runs[h] for h in order], list(self._names))

    def dump(self) -> bytes:
        return self.capture().encode()

    def load(self, data: bytes) -> None:
        """Replace the runs with a dump's. Raises ValueError on one it cannot read."""
        try:
            raw = zlib.decompress(data)
            if not raw.startswith(b"KWRI1"):
                raise ValueError("not a replay index")
            nlen = int.from_bytes(raw[5:9], "little")
            n = int.from_bytes(raw[9:13], "little")
            names = json.loads(raw[13 : 13 + nlen])
            at = 13 + nlen
            hashes, values = array("Q"), array("Q")
            hashes.frombytes(raw[at : at + 8 * n])
            values.frombytes(raw[at + 8 * n : at + 16 * n])
        except (zlib.error, ValueError, TypeError) as e:
            raise ValueError(f"unreadable replay index: {e}") from e
        if len(hashes) != n or len(values) != n or not isinstance(names, list):
            raise ValueError("replay index is truncated")
        self._runs = {}
        self._order = deque()
        self._names = [str(x) for x in names]
        self._number = {t: i for i, t in enumerate(self._names)}
        for h, v in zip(hashes, values, strict=True):
            if v >> 34 < len(self._names) and h not in self._runs:
                self._runs[h] = v
                self._order.append(h)
        while len(self._runs) > self.limit:
            del self._runs[self._order.popleft()]


class ReplayCapture:
    """The runs of a ReplayIndex at one moment, oldest first, ready to encode."""

    __slots__ = ("hashes", "names", "values")

    def __init__(self, hashes: list[int], values: list[int], names: list[str]) -> None:
        self.hashes = hashes
        self.values = values
        self.names = names

    def encode(self) -> bytes:
        """Tracker names as JSON, then the hashes and values as 64-bit arrays."""
        hashes = array("Q", (h & 0xFFFF_FFFF_FFFF_FFFF for h in self.hashes))
        values = array("Q", self.values)
        names = json.dumps(self.names).encode()
        head = len(names).to_bytes(4, "little") + len(self.hashes).to_bytes(4, "little")
        return zlib.compress(b"KWRI1" + head + names + hashes.tobytes() + values.tobytes(), 1)
