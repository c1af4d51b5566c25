"""The receipt's map: planned routes against the actual track, drawn as inline SVG.

SVG needs no tiles and no network, prints sharp at any size, and keeps the receipt one self-contained file
for the archive. The projection is equirectangular around the drawing's centre, which is exact enough over
the few tens of kilometres of one crate's journey.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 1000.0
MAX_HEIGHT = 650.0  # fits half an A4 page with the legend
PADDING = 30.0
MAX_TRACK_POINTS = 1500  # per leg; a printed line gains nothing from more
_M_PER_DEG = 111_320.0
# One colour per leg, in order (colour-blind-safe, and distinct in greyscale print by dash pattern too).
LEG_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


@dataclass
class MapLeg:
    label: str
    route: Sequence[Sequence[float]]  # [[lat, lon], ...] as planned
    track: Sequence[Sequence[float]]  # [[lat, lon], ...] as the tracker reported
    origin: tuple[float, float, float]  # lat, lon, radius_m
    destination: tuple[float, float, float]
    handover: tuple[float, float] | None = None  # where the tracker was at the handover
    handover_ok: bool = True


@dataclass
class SvgShape:
    kind: str  # polyline | circle | text
    attrs: dict[str, str] = field(default_factory=dict)
    text: str = ""


@dataclass
class SvgMap:
    width: float
    height: float
    shapes: list[SvgShape]
    legend: list[tuple[str, str]]  # (colour, label)
    scale_m: float  # the length of the scale bar in metres
    scale_px: float


def thin(points: Sequence[Sequence[float]], limit: int = MAX_TRACK_POINTS) -> list[Sequence[float]]:
    """Every n-th point, keeping the last, so a long track stays a small drawing."""
    if len(points) <= limit:
        return list(points)
    step = math.ceil(len(points) / limit)
    out = list(points[::step])
    if out[-1] is not points[-1]:
        out.append(points[-1])
    return out


def draw(legs: Sequence[MapLeg]) -> SvgMap | None:
    """The map of the legs, or None when there is nothing to place."""
    pts: list[tuple[float, float]] = []
    for leg in legs:
        pts += [(float(p[0]), float(p[1])) for p in (*leg.route, *leg.track)]
        for lat, lon, r in (leg.origin, leg.destination):
            dlat = r / _M_PER_DEG
            pts += [(lat - dlat, lon), (lat + dlat, lon)]
    pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    if not pts:
        return None
    lat0 = (min(p[0] for p in pts) + max(p[0] for p in pts)) / 2
    kx = math.cos(math.radians(lat0))
    xs = [p[1] * kx for p in pts]
    ys = [-p[0] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    # px per (scaled) degree: the drawing fills the width, or the height limit when it is tall and narrow
    scale = min((WIDTH - 2 * PADDING) / max(x1 - x0, 1e-4), (MAX_HEIGHT - 2 * PADDING) / max(y1 - y0, 1e-4))
    height = max(200.0, (y1 - y0) * scale + 2 * PADDING)
    off_x = PADDING + ((WIDTH - 2 * PADDING) - (x1 - x0) * scale) / 2
    off_y = PADDING + ((height - 2 * PADDING) - (y1 - y0) * scale) / 2

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return off_x + (lon * kx - x0) * scale, off_y + (-lat - y0) * scale

    def path(points: Sequence[Sequence[float]]) -> str:
        return " ".join("{:.1f},{:.1f}".format(*xy(float(p[0]), float(p[1]))) for p in points)

    px_per_m = scale / _M_PER_DEG
    shapes: list[SvgShape] = []
    legend: list[tuple[str, str]] = []
    for i, leg in enumerate(legs):
        colour = LEG_COLOURS[i % len(LEG_COLOURS)]
        legend.append((colour, leg.label))
        for lat, lon, r in (leg.origin, leg.destination):
            cx, cy = xy(lat, lon)
            shapes.append(
                SvgShape(
                    "circle",
                    {
                        "cx": f"{cx:.1f}",
                        "cy": f"{cy:.1f}",
                        "r": f"{max(3.0, r * px_per_m):.1f}",
                        "class": "zone",
                        "stroke": colour,
                    },
                )
            )
        if len(leg.route) >= 2:
            shapes.append(SvgShape("polyline", {"points": path(leg.route), "class": "planned", "stroke": colour}))
        if len(leg.track) >= 2:
            shapes.append(SvgShape("polyline", {"points": path(thin(leg.track)), "class": "actual", "stroke": colour}))
        if leg.handover is not None:
            hx, hy = xy(*leg.handover)
            cls = "handover" if leg.handover_ok else "handover mismatch"
            shapes.append(SvgShape("circle", {"cx": f"{hx:.1f}", "cy": f"{hy:.1f}", "r": "7", "class": cls}))
            shapes.append(SvgShape("text", {"x": f"{hx + 9:.1f}", "y": f"{hy - 9:.1f}", "class": "label"}, str(i + 1)))
    scale_m = _nice((WIDTH - 2 * PADDING) / px_per_m / 5)
    return SvgMap(WIDTH, height, shapes, legend, scale_m, scale_m * px_per_m)


def _nice(metres: float) -> float:
    """1, 2 or 5 times a power of ten, at most `metres`."""
    if metres <= 0 or not math.isfinite(metres):
        return 100.0
    p = 10 ** math.floor(math.log10(metres))
    return next(m * p for m in (5, 2, 1) if m * p <= metres)
