"""Chain of custody in a simulated distribution (CONTRACT 2.2, 2.6): seal numbers, linked legs and the
handovers of simulated officers, posted through the API while the scenario plays.

Each crate is sealed at the regency warehouse with numbered cable ties that stay on it all the way out
(warehouse → PPK → PPS → TPS); every leg names the one before it. When a trip's crate comes to rest at its
destination, the receiving officer signs for it a few minutes later. A share of otherwise clean trips gets
a bad handover, labelled in the ground truth as a `handover_mismatch` incident:
- `wrong_seal`: the officer reads a seal number that is not the trip's (a swapped cable tie);
- `away`: the handover is signed while the crate is still on the road, halfway (paperwork done in advance).
  The trip ends then, so the rest of the drive is movement out of storage: `unexpected_movement` is a
  legitimate consequence there.
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

if TYPE_CHECKING:
    from simulators.model import TrackerSpec
    from simulators.plan_base import PlanBase

log = logging.getLogger(__name__)

ROLES = {1: "PPK", 2: "PPS", 3: "KPPS", 4: "PPS", 5: "PPK"}  # who receives at the end of each leg
OFFICERS = ("Siti Aminah", "Budi Santoso", "Dewi Lestari", "Agus Salim", "Rina Wati", "Joko Susilo", "Nur Hayati")
INGEST_WAIT_S = 0.3  # wall seconds between queueing a handover and posting it
POST_LAG_S = 120.0  # simulated seconds after `at` before the handover is posted: its fixes are in by then


@dataclass(slots=True)
class HandoverSpec:
    """One handover the simulated officer posts: POST /api/v1/trips/{trip_id}/handover."""

    trip_id: str
    tracker_id: str
    at: float
    receiver: dict[str, str]
    seals: list[str]
    kind: str  # clean | wrong_seal | away
    truth_id: str | None = None

    def body(self) -> dict[str, Any]:
        return {"receiver": self.receiver, "seals": self.seals, "at": self.at, "note": f"simulated ({self.kind})"}


def seal_numbers(crate_index: int, count: int = 2, direction: str = "outbound") -> list[str]:
    """The crate's cable-tie numbers, as the regency's KPU prints them (3517 is Jombang's code); the KPPS
    reseals the box after counting with its own numbered ties for the way back."""
    if direction == "return":
        return [f"KPPS-3517-{crate_index + 1:05d}-{k + 1}" for k in range(count)]
    return [f"KPU-3517-{crate_index * count + k + 1:07d}" for k in range(count)]


def plan_custody(planner: PlanBase, specs: list[TrackerSpec], mismatch_share: float) -> list[HandoverSpec]:
    """Seals and leg links on every trip; a handover for every trip that reaches its destination.

    Runs after the crates' timelines are planned (it needs each trip's arrival) and draws from its own
    random stream, so the rest of the scenario is the same with or without custody.
    """
    rng = np.random.default_rng(np.random.SeedSequence([planner.seed, 0xC057]))
    out: list[HandoverSpec] = []
    candidates: list[tuple[TrackerSpec, int]] = []
    for spec in specs:
        troubled = any(t.incident is not None for t in spec.trips)  # one incident per crate
        prev: str | None = None
        for i, trip in enumerate(spec.trips):
            trip.seals = seal_numbers(spec.index, direction=trip.direction)
            trip.previous_trip_id = prev
            prev = trip.trip_id
            if trip.arrival is None or trip.incident == "wrong_destination":
                continue  # never signed for at its own destination
            if not troubled and trip.arrival - trip.departure > 600:
                candidates.append((spec, i))
    n_bad = round(mismatch_share * len(candidates))
    bad: dict[str, str] = {}
    used: set[str] = set()
    for k in rng.permutation(len(candidates)):
        if len(bad) >= n_bad:
            break
        spec, i = candidates[int(k)]
        if spec.tracker_id in used:
            continue  # one incident per crate: a second would only update the same open alert
        used.add(spec.tracker_id)
        bad[spec.trips[i].trip_id] = "wrong_seal" if len(bad) % 2 == 0 else "away"
    for spec in specs:
        for trip in spec.trips:
            if trip.arrival is None or trip.incident == "wrong_destination":
                continue
            nxt = next((t for t in spec.trips if t.leg == trip.leg + 1), None)
            kind = bad.get(trip.trip_id, "clean")
            at = _heard_again(spec, trip.arrival + float(rng.uniform(180.0, 900.0)))
            if nxt is not None:
                at = min(at, nxt.depart_after - 60.0)
            read = list(trip.seals)
            if kind == "wrong_seal":
                read[-1] = f"{read[-1][:-3]}{int(rng.integers(100, 999))}"  # a swapped tie
            elif kind == "away":
                at = trip.departure + 0.5 * (trip.arrival - trip.departure)
            officer = OFFICERS[int(rng.integers(len(OFFICERS)))]
            ho = HandoverSpec(
                trip.trip_id, spec.tracker_id, round(at, 3), {"name": officer, "role": ROLES.get(trip.leg, "PPK")},
                read, kind,
            )  # fmt: skip
            if kind != "clean":
                trip.incident = "handover_mismatch"
                details: dict[str, Any] = {"kind": kind}
                if kind == "wrong_seal":
                    details["read"] = read
                    details["expected"] = trip.seals
                ev = planner.add_truth(
                    "handover_mismatch", spec, trip, ho.at, ho.at, (ho.at - 60.0, ho.at + 600.0), True, details
                )
                if kind == "away":
                    ev.also = ("unexpected_movement",)
                    ev.also_window = (ho.at - 60.0, trip.arrival + 4 * 3600.0)
                ho.truth_id = ev.id
            out.append(ho)
    out.sort(key=lambda h: (h.at, h.trip_id))
    return out


def with_early_mismatch(handovers: list[HandoverSpec], within: int = 4) -> list[HandoverSpec]:
    """The handovers with a wrong seal read among the first `within` (the demo shows one early on)."""
    out = list(handovers)
    if len(out) < 3 or any(h.kind != "clean" for h in out[:within]):
        return out
    h = out[2]
    out[2] = HandoverSpec(h.trip_id, h.tracker_id, h.at, h.receiver, [*h.seals[:-1], "KPU-3517-9999999"], "wrong_seal")
    return out


def _heard_again(spec: TrackerSpec, at: float) -> float:
    """`at`, or later when the tracker is silent or out of coverage then: an officer signs once the crate's
    position is in (a handover in a jammed or dead spot is a mismatch of its own, by missing evidence)."""
    gaps = [(s.t0, s.t1) for s in spec.silences] + list(spec.dead_zones)
    # Back from a gap at rest, the tracker reports at its storage pace: wait for that report too.
    after = spec.interval_s * spec.storage_every + 180.0
    for t0, t1 in sorted(gaps):
        if t0 <= at <= t1 + after:
            at = t1 + after
    return at


@dataclass
class HandoverPoster:
    """Posts the scenario's handovers as the publisher's simulated clock passes them (`on_publish`), from
    a thread of its own so the publisher never waits for the API. `finish()` posts the rest and waits."""

    api_url: str
    token: str
    handovers: list[HandoverSpec]
    posted: int = 0
    failed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._due = [h.at + POST_LAG_S for h in self.handovers]
        self._next = 0
        self._q: queue.Queue[tuple[float, HandoverSpec] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sim-handovers", daemon=True)
        self._thread.start()

    def on_publish(self, msg: Any, wall: float) -> None:
        end = bisect.bisect_right(self._due, float(msg.at), lo=self._next)
        for h in self.handovers[self._next : end]:
            self._q.put((time.monotonic(), h))
        self._next = max(self._next, end)

    def finish(self, timeout: float | None = None) -> None:
        """Post what is left and wait for the thread (default: a second per handover still queued)."""
        now = time.monotonic()
        for h in self.handovers[self._next :]:
            self._q.put((now, h))
        self._next = len(self.handovers)
        self._q.put(None)
        self._thread.join(timeout if timeout is not None else 30.0 + self._q.qsize())

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.api_url.rstrip("/"), headers=headers, timeout=30) as client:
            while (item := self._q.get()) is not None:
                queued, h = item
                # The readings published just before it are stored by then (ingest keeps up within that).
                time.sleep(max(0.0, queued + INGEST_WAIT_S - time.monotonic()))
                try:
                    r = client.post(f"/api/v1/trips/{h.trip_id}/handover", json=h.body())
                except httpx.HTTPError as e:
                    self.failed.append(f"{h.trip_id}: {e}")
                    continue
                if r.status_code == 201:
                    self.posted += 1
                else:
                    self.failed.append(f"{h.trip_id}: {r.status_code} {r.text[:200]}")
        if self.failed:
            log.warning("%d handover(s) refused, first: %s", len(self.failed), self.failed[0])
