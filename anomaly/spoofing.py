"""spoofing_suspected (major): the readings look made up or replayed. Four kinds of evidence, each in
`details` (`evidence` lists every kind seen in the trip; the latest kind's figures are under its name):

- `seq`: an in-order reading whose `seq` went back, not to a small number (a reboot restarts at
  <= `reboot_seq_max` with a fresh `ts`; anything else is a second source with the tracker's id), or
  jumped forward by more than `seq_jump_min` and twice the elapsed seconds.
- `ts`: a reading whose `seq` is newer than any seen but whose `ts` is more than `ts_regress_min_s` older
  than the latest: a replay repeats old times; a reboot does not (its `seq` is small).
- `kinematics`: reported `spd`/`hdg` disagree with the movement between consecutive accepted fixes, in
  `kin_bad` of the last `kin_window` pairs (a track drawn along the route while the lorry goes elsewhere).
- `noise`: at rest, consecutive fixes move by less than `noise_clean_m` in a share of at least
  `noise_clean_share` of them, while the same tracker's own earlier rest fixes showed at most
  `noise_own_share` (a GPS simulator: no receiver noise).
- `replay`: the last `replay_run` quantised fixes match a run stored earlier, by this tracker (more than
  `replay_min_age_s` ago) or another (`anomaly.replay`).

Each new kind raises (the first creates the alert, later ones update it). Never resolves by itself: it is
evidence for a person to judge. Trip-scoped: a new trip may raise it again.
"""

from __future__ import annotations

import math

from alerts.model import AlertType
from anomaly.base import Ctx, Detector
from anomaly.config import DetectionConfig
from anomaly.gps import FIX_OK, FIX_STALE
from anomaly.phase import ANY_PHASE, Phase
from anomaly.replay import ReplayIndex, cell
from anomaly.state import NAN, TrackerState
from kawal.geodesy import M_PER_DEG

EV_SEQ, EV_TS, EV_KIN, EV_NOISE, EV_REPLAY = 1, 2, 4, 8, 16
EV_NAMES = {EV_SEQ: "seq", EV_TS: "ts", EV_KIN: "kinematics", EV_NOISE: "noise", EV_REPLAY: "replay"}
BASELINE_ALPHA = 0.02  # the tracker's own baseline learns slowly, over trips
_P61 = (1 << 61) - 1
BASELINE_MIN = 20  # rest fixes before the receiver's own noise is trusted


class SpoofingDetector(Detector):
    type = AlertType.SPOOFING_SUSPECTED
    phases = ANY_PHASE

    def __init__(self) -> None:
        super().__init__()
        self.index: ReplayIndex | None = None  # sized from the config at first use

    def index_for(self, cfg: DetectionConfig) -> ReplayIndex:
        if self.index is None:
            self.index = ReplayIndex(cfg.replay_index_max)
        return self.index

    # ---- in-order readings --------------------------------------------------------------------------
    def on_reading(self, c: Ctx, st: TrackerState) -> None:
        r = c.reading
        assert r is not None
        cfg = c.cfg
        seq = -1 if r.seq is None else r.seq
        prev = c.prev_seq
        if seq >= 0 and prev >= 0:
            if seq < prev:
                if seq <= cfg.reboot_seq_max:
                    c.emit.count("tracker_reboot")
                else:
                    self._evidence(c, st, EV_SEQ, {"kind": "regression", "from": prev, "to": seq})
            elif seq - prev > cfg.seq_jump_min and seq - prev > 2.0 * (c.ts - c.prev_last):
                self._evidence(c, st, EV_SEQ, {"kind": "jump", "from": prev, "to": seq})
        if seq >= 0 and not seq <= st.sq_hi:
            st.sq_hi = float(seq)
        if c.fix == FIX_STALE:  # the same position again: the receiver holds still (or is made to)
            self._noise(c, st)
        if c.fix != FIX_OK:
            return
        if c.phase is Phase.TRANSIT:
            self._kinematics(c, st)
        self._noise(c, st)
        self._replay(c, st)

    def on_late(self, c: Ctx, st: TrackerState) -> None:
        """A reading older than the tracker's latest: a backlog carries older counters too; a replay of old
        times under a newer counter does not."""
        r = c.reading
        assert r is not None
        if r.seq is None or not r.seq > st.sq_hi or st.last_ts - r.ts <= c.cfg.ts_regress_min_s:
            return
        self._evidence(c, st, EV_TS, {"ts": r.ts, "latest_ts": st.last_ts, "seq": r.seq})

    # ---- evidence -------------------------------------------------------------------------------------
    def _kinematics(self, c: Ctx, st: TrackerState) -> None:
        r = c.reading
        assert r is not None
        cfg = c.cfg
        spd0, hdg0 = st.kn_spd, st.kn_hdg
        st.kn_spd = NAN if r.spd is None else r.spd
        st.kn_hdg = NAN if r.hdg is None else r.hdg
        dt = c.ts - c.prev_ts
        if r.spd is None or r.hdg is None or spd0 != spd0 or hdg0 != hdg0 or not 5.0 <= dt <= cfg.kin_max_dt_s:
            return
        # implied and reported velocity (east, north) in km/h
        kx = M_PER_DEG * math.cos(math.radians(c.lat))
        ix = (c.lon - c.prev_lon) * kx / dt * 3.6
        iy = (c.lat - c.prev_lat) * M_PER_DEG / dt * 3.6
        a0, a1 = math.radians(hdg0), math.radians(r.hdg)
        rx = 0.5 * (spd0 * math.sin(a0) + r.spd * math.sin(a1))
        ry = 0.5 * (spd0 * math.cos(a0) + r.spd * math.cos(a1))
        big = max(math.hypot(ix, iy), math.hypot(rx, ry))
        if big < cfg.kin_min_kmh:
            return
        diff = math.hypot(ix - rx, iy - ry)
        st.kn_n += 1
        if diff > max(cfg.kin_tol_kmh, cfg.kin_tol_ratio * big):
            st.kn_bad += 1
        if st.kn_bad >= cfg.kin_bad:
            self._evidence(
                c,
                st,
                EV_KIN,
                {
                    "disagreeing": st.kn_bad,
                    "checked": st.kn_n,
                    "reported_kmh": round(math.hypot(rx, ry), 1),
                    "implied_kmh": round(math.hypot(ix, iy), 1),
                    "difference_kmh": round(diff, 1),
                },
            )
        if st.kn_n >= cfg.kin_window:
            st.kn_n //= 2
            st.kn_bad //= 2

    def _noise(self, c: Ctx, st: TrackerState) -> None:
        """At rest, a receiver's own error (Gauss-Markov, sigma >= 2 m) moves each fix by a metre or more from
        the one before; a GPS simulator holding the lorry still repeats its position to the centimetre.
        The share of such "clean" rest fixes is learned per tracker in any phase (its baseline, kept across
        trips) and judged in transit against it. Moving fixes are not used: fixes 10-60 s apart on a bending
        road differ by geometry far more than by noise."""
        cfg = c.cfg
        r = c.reading
        assert r is not None
        dt = c.ts - (c.prev_last if c.fix == FIX_STALE else c.prev_ts)
        if not 0.0 < dt <= cfg.noise_max_dt_s or c.prev_lat != c.prev_lat:
            return
        kx = M_PER_DEG * math.cos(math.radians(c.lat))
        d = math.hypot((c.lon - c.prev_lon) * kx, (c.lat - c.prev_lat) * M_PER_DEG)
        resting = r.spd < cfg.noise_rest_kmh if r.spd is not None else d < cfg.noise_rest_m
        if not resting:
            return
        clean = 1.0 if d < cfg.noise_clean_m else 0.0
        transit = c.phase is Phase.TRANSIT
        # The receiver's own noise, learned slowly: in storage, and in transit only while the trip still looks
        # like it (a baseline that followed a GPS simulator's repeats would soon excuse them).
        if not transit or st.nz_n == 0 or st.nz_avg <= cfg.noise_own_share:
            base = st.nz_base
            st.nz_base = clean if st.nz_bn == 0 else base + BASELINE_ALPHA * (clean - base)
            st.nz_bn += 1
        if not transit:
            return
        a = cfg.noise_alpha
        st.nz_avg = clean if st.nz_n == 0 else st.nz_avg + a * (clean - st.nz_avg)
        st.nz_n += 1
        if st.nz_n < cfg.noise_min_samples or st.nz_avg < cfg.noise_clean_share:
            return
        # Judged against the receiver's own earlier noise only: a synthetic track with no noise at all (the
        # test suite's, a receiver that holds its position at rest) never showed real noise to be unlike.
        if st.nz_bn >= BASELINE_MIN and st.nz_base <= cfg.noise_own_share:
            self._evidence(
                c,
                st,
                EV_NOISE,
                {
                    "kind": "too_clean",
                    "clean_share": round(st.nz_avg, 2),
                    "own_clean_share": round(st.nz_base, 2),
                    "rest_fixes": st.nz_n,
                },
            )

    def _replay(self, c: Ctx, st: TrackerState) -> None:
        cfg = c.cfg
        if st.rp_lat == st.rp_lat:
            kx = M_PER_DEG * math.cos(math.radians(c.lat))
            if math.hypot((c.lon - st.rp_lon) * kx, (c.lat - st.rp_lat) * M_PER_DEG) < cfg.replay_step_m:
                return
        st.rp_lat, st.rp_lon = c.lat, c.lon
        # The run: the last `replay_run` cells, each folded to 32 bits as 8 hex digits, in one str (compact in
        # memory and in the snapshot's JSON; five cells all colliding by chance does not happen); the run's
        # hash is its value modulo the Mersenne prime 2**61 - 1: cheap, and the same in every process (the
        # index is saved across restarts).
        q = cell(c.lat, c.lon, cfg.replay_cell_deg)
        code = format((q ^ (q >> 29)) & 0xFFFF_FFFF, "08x")
        size = 8 * cfg.replay_run
        win = (st.rp_win or "") + code
        if len(win) > size:
            win = win[-size:]
        st.rp_win = win
        if len(win) < size:
            return
        idx = self.index_for(cfg)
        h = int(win, 16) % _P61
        hit = idx.get(h)
        if hit is None:
            # Only tracks with a receiver's real noise are stored: copies of a noise-free line (a synthetic
            # track, the tests' drives) say nothing about a replay.
            if h % cfg.replay_sample == 0 and st.nz_bn >= BASELINE_MIN and st.nz_base <= cfg.noise_own_share:
                idx.add(h, st.tid, c.ts)
            return
        src, ts0 = hit
        if src == st.tid and c.ts - ts0 < cfg.replay_min_age_s:
            return
        self._evidence(c, st, EV_REPLAY, {"source_tracker": src, "source_ts": ts0, "shift_s": round(c.ts - ts0, 1)})

    def _evidence(self, c: Ctx, st: TrackerState, kind: int, figures: dict[str, object]) -> None:
        c.emit.count(f"spoofing_{EV_NAMES[kind]}")
        if st.sp_ev & kind:
            return
        evidence = [EV_NAMES[k] for k in EV_NAMES if (st.sp_ev | kind) & k]
        r = c.reading
        lat = lon = None
        if r is not None and r.has_position:
            lat, lon = r.lat, r.lon
        elif st.has_fix:
            lat, lon = st.fx_lat, st.fx_lon
        details: dict[str, object] = {"evidence": evidence, EV_NAMES[kind]: figures}
        if c.emit.raise_(st, c.plan, self.type, c.ts, lat, lon, details):
            st.sp_ev |= kind
