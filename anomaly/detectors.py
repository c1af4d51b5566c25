"""Every detector the engine runs by default, in evaluation order, and the order of readings in a run."""

from __future__ import annotations

from typing import Any

from anomaly.base import Detector
from anomaly.fix_lost import FixLostDetector
from anomaly.gps_jump import GpsJumpDetector
from anomaly.low_battery import LowBatteryDetector
from anomaly.overdue import OverdueDetector
from anomaly.route_deviation import RouteDeviationDetector
from anomaly.seal import SealDetector
from anomaly.signal_lost import SignalLostDetector
from anomaly.spoofing import SpoofingDetector
from anomaly.unexpected_movement import UnexpectedMovementDetector
from anomaly.unscheduled_stop import UnscheduledStopDetector
from anomaly.wrong_destination import WrongDestinationDetector
from devices.reading import Reading


def default_detectors() -> tuple[Detector, ...]:
    """Every alert type, in evaluation order (seal first: it must never wait for anything)."""
    return (
        SealDetector(),
        GpsJumpDetector(),
        LowBatteryDetector(),
        SignalLostDetector(),
        FixLostDetector(),
        RouteDeviationDetector(),
        UnscheduledStopDetector(),
        WrongDestinationDetector(),
        UnexpectedMovementDetector(),
        OverdueDetector(),
        SpoofingDetector(),
    )


def reading_order(r: Reading) -> tuple[Any, ...]:
    """A total order on readings, so that any shuffle of a batch is processed identically."""
    return (
        r.ts,
        -1 if r.seq is None else r.seq,
        999.0 if r.lat is None else r.lat,
        999.0 if r.lon is None else r.lon,
        r.seal or "",
        -1.0 if r.bat is None else r.bat,
        -1.0 if r.acc is None else r.acc,
        -1.0 if r.spd is None else r.spd,
        -1.0 if r.hdg is None else r.hdg,
    )
