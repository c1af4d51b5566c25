"""What each tracker sends, generated lazily from a scenario's plan, in publish-time order.

Per tracker, one generator walks its report grid (every `interval_s` while awake, every
`storage_every`-th grid point while at rest in storage) and turns the true state into a reading:

- GPS error: a first-order Gauss–Markov process per axis (exponentially correlated with time constant
  `gps_tau_s`), stationary σ = the tracker's σ (x 1.8 indoors); the reported `acc` is the 68 % radius of
  that error (1.51 σ), so the noise is calibrated to what the tracker claims. Rare small multipath errors
  (15-50 m, with an inflated `acc`), and the planned multi-kilometre jumps of `gps_jump` incidents.
- speed and heading with sensor noise, battery from the tracker's drain line, the seal state.
- dead zones: readings are kept and sent as one JSON array (native) or one by one (OwnTracks) when
  coverage returns, with duplicates and shuffled order at the configured rates.
- silences of `signal_lost` incidents: switched off (nothing recorded) or jammed (fix-less readings kept).

`merge_streams` merges the per-tracker generators with a heap: the fleet's messages in time order, from
one thread, however many trackers there are.
"""

from __future__ import annotations

import heapq
import json
import math
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulators.attacks import AttackState
from simulators.model import ACC_PER_SIGMA, Scenario, TrackerSpec

MAX_BATCH = 1000  # CONTRACT 1.1: a batch holds 1 to 1000 readings


@dataclass(slots=True)
class Message:
    """One MQTT publish, due at simulated time `at`."""

    at: float
    topic: str
    payload: bytes
    tracker_id: str
    retain: bool = False
    kind: str = "reading"  # reading | batch | status
    readings: int = 0  # readings in the payload, repeats included
    unique: int = 0  # readings sent here for the first time
    marks: tuple[str, ...] = ()  # ids of incidents whose first evidence is in this message
    control: str | None = None  # "drop": the tracker vanishes (its next message reconnects it)
    order: int = field(default=0, compare=False)  # tie-break within a tracker


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _Generator:
    """State of one tracker's stream."""

    def __init__(self, sc: Scenario, spec: TrackerSpec) -> None:
        self.sc = sc
        self.spec = spec
        self.cfg = sc.config
        self.rng = np.random.default_rng(np.random.SeedSequence([sc.seed, 0x57E, spec.index]))
        self.frame = sc.geography.frame
        self.native = spec.protocol == "native"
        self.topic = f"kawal/v1/{spec.tracker_id}/telemetry" if self.native else spec.owntracks_topic
        self.status_topic = f"kawal/v1/{spec.tracker_id}/status"
        self.z = self.rng.normal(0.0, 1.0, 2)  # Gauss–Markov state, unit variance per axis
        self.t_prev: float | None = None
        self.seq = 0
        self.heading = 0.0
        self.pending: list[tuple[float, int, Message]] = []
        self.order = 0
        self.buffer: list[tuple[dict[str, Any], tuple[str, ...]]] = []
        self.seal_t = [t for t, _ in spec.seal_events]
        self.seal_s = [s for _, s in spec.seal_events]
        self.attack = AttackState(sc, spec) if spec.attacks else None

    # ----- the reading ---------------------------------------------------------------------------
    def seal_at(self, t: float) -> str:
        i = bisect_right(self.seal_t, t) - 1
        return self.seal_s[i] if i >= 0 else "closed"

    def reading(self, t: float, fix: bool) -> tuple[dict[str, Any], tuple[str, ...]]:
        spec, cfg, rng = self.spec, self.cfg, self.rng
        st = spec.timeline.state(t)
        sigma = spec.sigma_m * (cfg.indoor_sigma_factor if st.indoor else 1.0)
        dt = cfg.gps_tau_s * 10 if self.t_prev is None else max(0.0, t - self.t_prev)
        phi = math.exp(-dt / cfg.gps_tau_s)
        self.z = phi * self.z + math.sqrt(1.0 - phi * phi) * rng.normal(0.0, 1.0, 2)
        self.t_prev = t
        ex, ey = float(sigma * self.z[0]), float(sigma * self.z[1])
        acc = sigma * ACC_PER_SIGMA
        if rng.uniform() < cfg.multipath_rate:
            mp, a = float(rng.uniform(15.0, 50.0)), float(rng.uniform(0, 2 * math.pi))
            ex, ey = ex + mp * math.cos(a), ey + mp * math.sin(a)
            acc = max(acc * 3.0, mp)
        marks: list[str] = []
        jump = spec.jumps.get(t)
        if jump is not None:
            ex, ey = ex + jump[0], ey + jump[1]
            marks.append(spec.marks[("jump", t)])
        for key in (("seal", t), ("battery", t)):
            if key in spec.marks:
                marks.append(spec.marks[key])
        moving = st.v > 0.3
        if moving and st.heading is not None:
            self.heading = (st.heading + float(rng.normal(0.0, 2.0))) % 360.0
        spd = max(0.0, st.v * 3.6 + float(rng.normal(0.0, 0.8))) if moving else 0.0
        bat = round(spec.battery(t, self.sc.start))
        self.seq += 1
        lat, lon = self.frame.to_latlon(st.x + ex, st.y + ey)
        if self.native:
            r: dict[str, Any] = {"id": spec.tracker_id, "ts": int(t), "seq": self.seq}
            if fix:
                r.update(
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    acc=round(acc, 1),
                    spd=round(spd, 1),
                    hdg=round(self.heading, 1),
                )
            r.update(bat=bat, seal=self.seal_at(t))
            if self.attack is not None:
                self.attack.apply(t, r, *self.frame.to_latlon(st.x, st.y))
        else:
            r = {
                "_type": "location",
                "tid": spec.tracker_id[-2:],
                "tst": int(t),
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "acc": max(1, round(acc)),
                "vel": round(spd),
                "cog": round(self.heading),
                "batt": bat,
            }
        return r, tuple(marks)

    # ----- output --------------------------------------------------------------------------------
    def push(self, msg: Message) -> None:
        self.order += 1
        msg.order = self.order
        heapq.heappush(self.pending, (msg.at, self.order, msg))

    def send_live(self, t: float, r: dict[str, Any], marks: tuple[str, ...]) -> None:
        at = t + float(self.rng.uniform(0.05, 0.8))
        payload = _dumps(r)
        self.push(Message(at, self.topic, payload, self.spec.tracker_id, readings=1, unique=1, marks=marks))
        if self.rng.uniform() < self.cfg.duplicate_rate:  # a QoS 1 re-send: the same reading again
            self.push(
                Message(
                    at + float(self.rng.uniform(1.0, 5.0)),
                    self.topic,
                    payload,
                    self.spec.tracker_id,
                    readings=1,
                    unique=0,
                )
            )

    def flush(self, at: float) -> None:
        """Coverage is back: send what was kept."""
        if not self.buffer:
            return
        rng, cfg = self.rng, self.cfg
        items = list(self.buffer)
        self.buffer = []
        marks = tuple(m for _, ms in items for m in ms)
        dups = [it for it in items if rng.uniform() < cfg.duplicate_rate]
        readings = [r for r, _ in items]
        out = readings + [r for r, _ in dups]
        if dups or rng.uniform() < cfg.shuffle_rate:
            order = rng.permutation(len(out))
            out = [out[int(i)] for i in order]
        if self.native:
            sent: set[int] = set()
            for i in range(0, len(out), MAX_BATCH):
                chunk = out[i : i + MAX_BATCH]
                fresh = {id(r) for r in chunk} - sent
                sent |= fresh
                new = len(fresh)
                payload = _dumps(chunk)
                self.push(
                    Message(
                        at,
                        self.topic,
                        payload,
                        self.spec.tracker_id,
                        kind="batch",
                        readings=len(chunk),
                        unique=new,
                        marks=marks if i == 0 else (),
                    )
                )
                if rng.uniform() < cfg.resend_batch_rate:
                    self.push(
                        Message(
                            at + float(rng.uniform(2.0, 10.0)),
                            self.topic,
                            payload,
                            self.spec.tracker_id,
                            kind="batch",
                            readings=len(chunk),
                            unique=0,
                        )
                    )
        else:
            # The OwnTracks app sends its queue message by message once it reconnects.
            seen_ids: set[int] = set()
            by_id = {id(r): ms for r, ms in items}
            for k, r in enumerate(out):
                first = id(r) not in seen_ids
                seen_ids.add(id(r))
                self.push(
                    Message(
                        at + 0.02 * k,
                        self.topic,
                        _dumps(r),
                        self.spec.tracker_id,
                        readings=1,
                        unique=1 if first else 0,
                        marks=by_id[id(r)] if first else (),
                    )
                )

    def status(self, at: float, value: str, control: str | None = None) -> None:
        """Native trackers publish a retained online/offline status; an OwnTracks phone has only its
        `lwt` message (which Kawal ignores), sent when it drops off."""
        if self.native:
            msg = Message(
                at,
                self.status_topic,
                value.encode(),
                self.spec.tracker_id,
                retain=True,
                kind="status",
                control=control,
            )
        elif value == "offline":
            lwt = _dumps({"_type": "lwt", "tst": int(at)})
            msg = Message(at, self.topic, lwt, self.spec.tracker_id, kind="status", control=control)
        else:
            return
        self.push(msg)

    def drain(self, until: float) -> Iterator[Message]:
        while self.pending and self.pending[0][0] <= until:
            yield heapq.heappop(self.pending)[2]

    # ----- the walk ------------------------------------------------------------------------------
    def grid(self) -> Iterator[float]:
        """Report times: every interval while awake, every storage_every-th grid point otherwise."""
        spec, start, end = self.spec, self.sc.start, self.sc.end
        step, every = spec.interval_s, spec.storage_every
        t0 = start + spec.phase_s
        awake = spec.awake
        w = 0
        k = 0
        while True:
            t = t0 + k * step
            if t > end:
                return
            while w < len(awake) and awake[w][1] < t:
                w += 1
            is_awake = w < len(awake) and awake[w][0] <= t
            if is_awake or k % every == 0:
                yield t
            if is_awake:
                k += 1
            else:
                nxt = (k // every + 1) * every
                if w < len(awake):
                    nxt = min(nxt, max(k + 1, math.ceil((awake[w][0] - t0) / step)))
                k = nxt

    def run(self) -> Iterator[Message]:
        spec, sc = self.spec, self.sc
        events: list[tuple[float, int, str, Any]] = []
        for t, state in spec.seal_events:
            if t <= sc.end:
                events.append((t, 1, "seal", state))
        for s in spec.silences:
            events.append((s.t0, 2, "silence", s))
            events.append((s.t1, 0, "back", s))
        for _a, b in spec.dead_zones:
            events.append((b, 0, "coverage", None))
        events.sort(key=lambda e: (e[0], e[1]))
        self.status(sc.start, "online")
        ei = 0
        silence = None
        gi = self.grid()
        t_grid = next(gi, None)
        while True:
            t_ev = events[ei][0] if ei < len(events) else math.inf
            if t_grid is None and t_ev == math.inf:
                break
            if t_grid is not None and t_grid <= t_ev:
                t = t_grid
                t_grid = next(gi, None)
                yield from self.drain(t)
                self._reading(t, silence)
                continue
            t, _, kind, data = events[ei]
            ei += 1
            yield from self.drain(t)
            if kind == "seal":
                self._reading(t, silence)
            elif kind == "silence":
                silence = data
                if data.kind == "off":
                    self.status(t + 1.0, "offline", control="drop")  # the broker's Last Will, in effect
            elif kind == "back":
                silence = None
                if data.kind == "off":
                    self.status(t, "online")  # on a fresh connection
                self.flush(t + float(self.rng.uniform(5.0, 20.0)))
            elif kind == "coverage":
                self.flush(t + float(self.rng.uniform(3.0, 20.0)))
        yield from self.drain(math.inf)

    def _reading(self, t: float, silence: Any) -> None:
        spec = self.spec
        if silence is not None and silence.t0 < t < silence.t1:
            if silence.kind == "off" or not self.native:
                return
            self.buffer.append(self.reading(t, fix=False))
            return
        r, marks = self.reading(t, fix=True)
        if any(a <= t < b for a, b in spec.dead_zones):
            self.buffer.append((r, marks))
        else:
            self.send_live(t, r, marks)


def tracker_messages(sc: Scenario, spec: TrackerSpec) -> Iterator[Message]:
    """One tracker's messages in publish-time order."""
    return _Generator(sc, spec).run()


def recorded_readings(sc: Scenario, spec: TrackerSpec) -> list[dict[str, Any]]:
    """Every distinct native reading a tracker sends, by time (what an insider could have recorded)."""
    seen: dict[tuple[Any, Any], dict[str, Any]] = {}
    for m in tracker_messages(sc, spec):
        if m.kind == "status":
            continue
        body = json.loads(m.payload)
        for r in body if isinstance(body, list) else [body]:
            seen.setdefault((r.get("ts"), r.get("seq")), r)
    return sorted(seen.values(), key=lambda r: (r["ts"], r.get("seq", 0)))


def merge_streams(sc: Scenario) -> Iterator[Message]:
    """The fleet's messages in publish-time order: a heap over every tracker's next message."""
    streams = [tracker_messages(sc, spec) for spec in sc.trackers]
    heap: list[tuple[float, int, Message]] = []
    for i, s in enumerate(streams):
        m = next(s, None)
        if m is not None:
            heap.append((m.at, i, m))
    heapq.heapify(heap)
    while heap:
        _, i, m = heap[0]
        yield m
        nxt = next(streams[i], None)
        if nxt is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (nxt.at, i, nxt))
