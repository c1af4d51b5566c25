"""Fixes from gpsd, the standard GPS daemon, over its JSON protocol through the `gps` client package.

The package's socket client (`gps.client.gpscommon`: connect, line buffering, select) is used as is; its
`gps.gps` JSON unpacking passes `encoding=` to json.loads, which Python 3.9 removed, so reports are
decoded here. gpsd sends a cycle's TPV (position, speed, track) before its GST (per-axis error σ), so a
TPV is held until the GST of the same time arrives, or the next cycle begins.

`acc` (CONTRACT 1.1: 68 % horizontal radius) comes from gpsd's error estimates: from GST's σ of latitude
and longitude when the receiver sends GST, else from `epx`/`epy` (95 % per axis), else from `eph`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gps.client import gpscommon

log = logging.getLogger(__name__)

ACC_PER_SIGMA = math.sqrt(-2.0 * math.log(1.0 - 0.68))  # 68 % radius of a circular 2-D Gaussian, in σ
SIGMA_PER_95_AXIS = 1.0 / 1.96  # gpsd's epx/epy are 95 % bounds on one axis
SIGMA_PER_95_RADIUS = 1.0 / math.sqrt(-2.0 * math.log(0.05))  # eph taken as a 95 % radius
QUIET_S = 0.5  # gpsd silent this long after a TPV: the receiver sends no GST for it
WATCH = '?WATCH={"enable":true,"json":true}'


@dataclass(frozen=True, slots=True)
class Fix:
    ts: float  # GPS time, Unix seconds
    lat: float
    lon: float
    acc: float | None  # metres, 68 % radius
    spd: float | None  # km/h
    hdg: float | None  # degrees


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def accuracy(tpv: dict[str, Any], gst: dict[str, Any] | None) -> float | None:
    """The 68 % horizontal radius from gpsd's estimates (None when gpsd has none)."""
    if gst is not None and _num(gst.get("lat")) is not None and _num(gst.get("lon")) is not None:
        sigma = math.sqrt((float(gst["lat"]) ** 2 + float(gst["lon"]) ** 2) / 2.0)
        return round(ACC_PER_SIGMA * sigma, 1)
    epx, epy = _num(tpv.get("epx")), _num(tpv.get("epy"))
    if epx is not None and epy is not None:
        sigma = math.sqrt((epx**2 + epy**2) / 2.0) * SIGMA_PER_95_AXIS
        return round(ACC_PER_SIGMA * sigma, 1)
    eph = _num(tpv.get("eph"))
    if eph is not None:
        return round(ACC_PER_SIGMA * eph * SIGMA_PER_95_RADIUS, 1)
    return None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def fix_from(tpv: dict[str, Any], gst: dict[str, Any] | None) -> Fix | None:
    """A usable 2-D or 3-D fix from a TPV report, or None."""
    lat, lon = _num(tpv.get("lat")), _num(tpv.get("lon"))
    if tpv.get("mode", 0) < 2 or lat is None or lon is None or not isinstance(tpv.get("time"), str):
        return None
    try:
        ts = parse_time(tpv["time"])
    except ValueError:
        return None
    speed = _num(tpv.get("speed"))
    track = _num(tpv.get("track"))
    return Fix(
        ts=ts,
        lat=round(lat, 7),
        lon=round(lon, 7),
        acc=accuracy(tpv, gst),
        spd=None if speed is None else round(speed * 3.6, 1),
        hdg=None if track is None else round(track % 360.0, 1),
    )


class FixAssembler:
    """Pairs each cycle's TPV with its GST; `feed` returns the fixes that are complete."""

    def __init__(self) -> None:
        self.pending: dict[str, Any] | None = None
        self.last_gst: dict[str, Any] | None = None

    def feed(self, report: dict[str, Any]) -> list[Fix]:
        cls = report.get("class")
        out: list[Fix] = []
        if cls == "TPV" and isinstance(report.get("time"), str):
            if self.pending is not None and self.pending.get("time") != report["time"]:
                out += self.flush()
            self.pending = report
        elif cls == "GST":
            self.last_gst = report
            if self.pending is not None and self.pending.get("time") == report.get("time"):
                out += self.flush()
        return out

    def flush(self) -> list[Fix]:
        """The held TPV, with the latest GST when it is from the same cycle or the one before."""
        tpv, self.pending = self.pending, None
        if tpv is None:
            return []
        gst = self.last_gst
        if gst is not None and not _close_in_time(gst.get("time"), tpv["time"], 2.0):
            gst = None
        fix = fix_from(tpv, gst)
        return [fix] if fix is not None else []


def _close_in_time(a: Any, b: str, seconds: float) -> bool:
    try:
        return isinstance(a, str) and abs(parse_time(a) - parse_time(b)) <= seconds
    except ValueError:
        return False


class GpsdClient:
    """A watching connection to gpsd that reconnects by itself; `poll` never blocks longer than asked."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: gpscommon | None = None
        self.assembler = FixAssembler()
        self.retry_at = 0.0
        self.last_line_at = 0.0

    def _connect(self, now: float) -> bool:
        if self.conn is not None:
            return True
        if now < self.retry_at:
            return False
        try:
            self.conn = gpscommon(self.host, self.port)
            self.conn.send(WATCH)
            log.info("connected to gpsd at %s:%d", self.host, self.port)
            return True
        except OSError as e:
            log.warning("gpsd at %s:%d unreachable (%s); retrying", self.host, self.port, e)
            self.conn, self.retry_at = None, now + 1.0
            return False

    def poll(self, timeout: float, now: float) -> list[Fix]:
        """Fixes completed within `timeout` seconds (an empty list when gpsd is quiet or away)."""
        if not self._connect(now):
            return []
        assert self.conn is not None
        out: list[Fix] = []
        try:
            if not self.conn.waiting(timeout):
                if now - self.last_line_at >= QUIET_S:
                    return self.assembler.flush()  # a quiet cycle: no GST comes for the held TPV
                return []
            self.last_line_at = now
            while True:
                if self.conn.read() < 0:
                    raise OSError("gpsd closed the connection")
                line = self.conn.response.strip()
                if line.startswith("{"):
                    try:
                        report = json.loads(line)
                    except ValueError:
                        log.warning("gpsd sent a line that is not JSON: %.80s", line)
                    else:
                        if isinstance(report, dict):
                            out += self.assembler.feed(report)
                if not self.conn.waiting(0):
                    return out
        except OSError as e:
            log.warning("lost gpsd (%s); reconnecting", e)
            self.close()
            self.retry_at = now + 1.0
            return out + self.assembler.flush()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None
