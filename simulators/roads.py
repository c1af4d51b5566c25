"""A synthetic, deterministic road network over the regency, and shortest routes on it.

There is no map data offline, so the network is generated: a jittered grid of junctions about 1.5 km apart,
every fourth row and column an arterial road (faster), some diagonal short-cuts, random missing links, a
few blocked areas (fish ponds, sugar-cane estates) that routes must go around, and a river (standing in
for the Brantas, which crosses the north of Jombang) with only three bridges. Edges are curved (cubic
Bézier with a random bend, plus small wiggles on local roads) and sampled every ~20 m, so routes have
bends and road-like detours rather than straight lines. Places connect to the grid by access roads; each
TPS by a lane to its village office.

Routes minimise travel time (length / class speed) with Dijkstra.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from simulators.geo import FloatArray, Polyline, concat
from simulators.places import Geography, Place

GRID_M = 1500.0
SAMPLE_M = 20.0
# Free-flow speeds by road class, km/h: Indonesian kabupaten roads and village lanes (mixed traffic).
CLASS_SPEED_KMH: dict[str, float] = {"main": 60.0, "local": 38.0, "access": 28.0, "lane": 20.0}
BRIDGE_LONS = (112.19, 112.235, 112.31)
RIVER_LAT = -7.468


@dataclass(frozen=True, slots=True)
class Edge:
    u: int
    v: int
    road: str  # a key of CLASS_SPEED_KMH
    length: float  # straight-line metres (the curve is a few percent longer)


@dataclass(slots=True)
class Route:
    """A driven path: the fine road geometry, the junctions on it and the road class under each part."""

    path: Polyline
    nodes: list[int]
    node_s: list[float]  # distance along `path` of each node
    roads: list[str]  # road class of the edge after each node (len(nodes) - 1)

    def speed_limit_at(self, s: float) -> float:
        """Free-flow speed (m/s) of the road under distance s."""
        i = max(0, min(len(self.roads) - 1, int(np.searchsorted(self.node_s, s, side="right")) - 1))
        return CLASS_SPEED_KMH[self.roads[i]] / 3.6


class RoadNetwork:
    """Junctions and roads; `route(a, b)` gives the fastest driven path between two nodes."""

    def __init__(self, geo: Geography, seed: int = 0) -> None:
        self.geo = geo
        self.seed = seed
        self.xy: list[tuple[float, float]] = []
        self.adj: dict[int, dict[int, Edge]] = {}
        self.place_node: dict[str, int] = {}
        self._geom: dict[tuple[int, int], FloatArray] = {}
        self._routes: dict[tuple[int, int], Route] = {}
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0x40AD]))
        x0, y0, x1, y1 = geo.bounds_xy()
        self.bounds = (x0 - 3000.0, y0 - 3000.0, x1 + 3000.0, y1 + 3000.0)
        self.river_y0 = geo.frame.to_xy(RIVER_LAT, geo.frame.lon0)[1]
        self._build()

    # ----- construction -------------------------------------------------------------------------
    def river_y(self, x: float) -> float:
        return self.river_y0 + 500.0 * math.sin(x / 1500.0) + 250.0 * math.sin(x / 610.0 + 1.0)

    def north_of_river(self, x: float, y: float) -> bool:
        return y > self.river_y(x)

    def _add_node(self, x: float, y: float) -> int:
        self.xy.append((x, y))
        self.adj[len(self.xy) - 1] = {}
        return len(self.xy) - 1

    def _add_edge(self, u: int, v: int, road: str) -> None:
        (x1, y1), (x2, y2) = self.xy[u], self.xy[v]
        e = Edge(min(u, v), max(u, v), road, math.hypot(x2 - x1, y2 - y1))
        self.adj[u][v] = e
        self.adj[v][u] = e

    def _build(self) -> None:
        rng = self._rng
        bx0, by0, bx1, by1 = self.bounds
        cols = int((bx1 - bx0) // GRID_M) + 1
        rows = int((by1 - by0) // GRID_M) + 1
        grid: dict[tuple[int, int], int] = {}
        for r in range(rows):
            for c in range(cols):
                jx, jy = rng.uniform(-0.28, 0.28, 2) * GRID_M
                grid[(r, c)] = self._add_node(bx0 + c * GRID_M + jx, by0 + r * GRID_M + jy)
        places = [self.geo.warehouse, *self.geo.ppk]
        # Blocked areas: away from every office, so no place is cut off.
        offices = np.array([[p.x, p.y] for p in places] + [[v.x, v.y] for vs in self.geo.pps.values() for v in vs])
        blocks: list[tuple[float, float, float]] = []
        while len(blocks) < 7:
            cx, cy, rad = rng.uniform(bx0, bx1), rng.uniform(by0, by1), rng.uniform(900.0, 1800.0)
            if float(np.min(np.hypot(offices[:, 0] - cx, offices[:, 1] - cy))) > rad + 400.0:
                blocks.append((cx, cy, rad))
        self.blocks = blocks

        def blocked(x: float, y: float) -> bool:
            return any(math.hypot(x - bx, y - by) < br for bx, by, br in blocks)

        bridges_x = [self.geo.frame.to_xy(RIVER_LAT, lon)[0] for lon in BRIDGE_LONS]
        candidates: list[tuple[int, int, str]] = []
        for (r, c), n in grid.items():
            for dr, dc in ((0, 1), (1, 0)):
                m = grid.get((r + dr, c + dc))
                if m is None:
                    continue
                main = (dr == 0 and r % 4 == 0) or (dc == 0 and c % 4 == 0)
                candidates.append((n, m, "main" if main else "local"))
            if rng.uniform() < 0.22:  # diagonal short-cut through the block
                m = grid.get((r + 1, c + (1 if rng.uniform() < 0.5 else -1)))
                if m is not None:
                    candidates.append((n, m, "local"))
        crossings: list[tuple[float, tuple[int, int, str]]] = []
        kept: list[tuple[int, int, str]] = []
        spare: list[tuple[int, int, str]] = []
        for n, m, road in candidates:
            (x1, y1), (x2, y2) = self.xy[n], self.xy[m]
            if self.north_of_river(x1, y1) != self.north_of_river(x2, y2):
                crossings.append((min(abs((x1 + x2) / 2 - bx) for bx in bridges_x), (n, m, "main")))
                continue
            if blocked(x1, y1) or blocked(x2, y2) or blocked((x1 + x2) / 2, (y1 + y2) / 2):
                continue
            if road == "local" and rng.uniform() < 0.15:
                spare.append((n, m, road))  # a missing link, unless the network needs it
                continue
            kept.append((n, m, road))
        # One crossing edge per bridge: the one nearest each bridge's longitude.
        crossings.sort(key=lambda t: t[0])
        used_bridges: list[float] = []
        for _, (n, m, road) in crossings:
            mx = (self.xy[n][0] + self.xy[m][0]) / 2
            b = min(bridges_x, key=lambda bx: abs(mx - bx))
            if b not in used_bridges and abs(mx - b) < GRID_M:
                used_bridges.append(b)
                kept.append((n, m, road))
        for n, m, road in kept:
            self._add_edge(n, m, road)
        # Re-add missing links that join separate pieces, so every junction in use is reachable.
        parent = list(range(len(self.xy)))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for n, m, _ in kept:
            parent[find(n)] = find(m)
        for n, m, road in spare:
            if find(n) != find(m):
                parent[find(n)] = find(m)
                self._add_edge(n, m, road)
        sizes: dict[int, int] = {}
        for n in range(len(self.xy)):
            if self.adj[n]:
                sizes[find(n)] = sizes.get(find(n), 0) + 1
        main_root = max(sizes, key=lambda k: sizes[k])
        self._junctions = [n for n in range(len(self.xy)) if self.adj[n] and find(n) == main_root]
        self._junction_xy = np.array([self.xy[n] for n in self._junctions])
        # Offices connect to the two nearest junctions on their side of the river.
        for p in [*places, *(v for vs in self.geo.pps.values() for v in vs)]:
            node = self._add_node(p.x, p.y)
            self.place_node[p.code] = node
            for j in self._nearest_junctions(p.x, p.y, 2):
                self._add_edge(node, j, "access")
        # Polling stations hang off their village office by a lane.
        for vcode, stations in self.geo.tps.items():
            office = self.place_node[vcode]
            for t in stations:
                node = self._add_node(t.x, t.y)
                self.place_node[t.code] = node
                self._add_edge(node, office, "lane")

    def _nearest_junctions(self, x: float, y: float, k: int) -> list[int]:
        d = np.hypot(self._junction_xy[:, 0] - x, self._junction_xy[:, 1] - y)
        side = self.north_of_river(x, y)
        out: list[int] = []
        for i in np.argsort(d):
            n = self._junctions[int(i)]
            if self.north_of_river(*self.xy[n]) == side:
                out.append(n)
                if len(out) == k:
                    break
        return out

    # ----- geometry ------------------------------------------------------------------------------
    def edge_geometry(self, u: int, v: int) -> FloatArray:
        """The curved road from u to v, sampled every ~20 m (deterministic per edge)."""
        key = (min(u, v), max(u, v))
        g = self._geom.get(key)
        if g is None:
            e = self.adj[u][v]
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xED6E, key[0], key[1]]))
            p0, p3 = np.array(self.xy[key[0]]), np.array(self.xy[key[1]])
            d = p3 - p0
            n = np.array([-d[1], d[0]]) / max(e.length, 1e-9)
            bend = {"main": 0.05, "local": 0.09, "access": 0.12, "lane": 0.15}[e.road]
            p1 = p0 + d / 3 + n * rng.normal(0, bend) * e.length
            p2 = p0 + 2 * d / 3 + n * rng.normal(0, bend) * e.length
            k = max(2, int(e.length * 1.15 / SAMPLE_M) + 1)
            t = np.linspace(0.0, 1.0, k)[:, None]
            g = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
            if e.road in ("local", "lane", "access"):
                amp, wl, ph = rng.uniform(3.0, 12.0), rng.uniform(150.0, 400.0), rng.uniform(0, 2 * math.pi)
                w = amp * np.sin(np.linspace(0.0, e.length, k) / wl * 2 * math.pi + ph)
                w[0] = w[-1] = 0.0
                g = g + w[:, None] * n[None, :]
            self._geom[key] = g
        return g if u == key[0] else g[::-1]

    # ----- routing -------------------------------------------------------------------------------
    def node_of(self, place: Place) -> int:
        return self.place_node[place.code]

    def shortest_nodes(self, a: int, b: int, avoid: Iterable[int] = ()) -> list[int] | None:
        """Fastest node sequence from a to b (Dijkstra on travel time), or None if unreachable."""
        banned = set(avoid) - {a, b}
        dist = {a: 0.0}
        prev: dict[int, int] = {}
        heap = [(0.0, a)]
        done: set[int] = set()
        while heap:
            d, n = heapq.heappop(heap)
            if n in done:
                continue
            if n == b:
                break
            done.add(n)
            for m, e in self.adj[n].items():
                if m in banned or m in done:
                    continue
                nd = d + e.length * 1.05 / (CLASS_SPEED_KMH[e.road] / 3.6)
                if nd < dist.get(m, math.inf):
                    dist[m] = nd
                    prev[m] = n
                    heapq.heappush(heap, (nd, m))
        if b not in dist:
            return None
        path = [b]
        while path[-1] != a:
            path.append(prev[path[-1]])
        return path[::-1]

    def route_nodes(self, nodes: list[int]) -> Route:
        """The driven path through a node sequence."""
        parts = [self.edge_geometry(u, v) for u, v in itertools.pairwise(nodes)]
        node_s = [0.0]
        for p in parts:
            node_s.append(node_s[-1] + float(np.sum(np.hypot(*(p[1:] - p[:-1]).T))))
        roads = [self.adj[u][v].road for u, v in itertools.pairwise(nodes)]
        path = Polyline(concat(parts))
        node_s[-1] = path.length
        return Route(path, list(nodes), node_s, roads)

    def route(self, a: Place, b: Place) -> Route:
        key = (self.node_of(a), self.node_of(b))
        r = self._routes.get(key)
        if r is None:
            nodes = self.shortest_nodes(*key)
            if nodes is None:
                raise ValueError(f"no road from {a.name} to {b.name}")
            r = self._routes[key] = self.route_nodes(nodes)
        return r

    def nodes_near(self, line: Polyline, within_m: float) -> set[int]:
        """Junctions and offices within `within_m` of a path (to route a detour around it)."""
        pts = np.array(self.xy)
        x0, y0 = line.xy.min(axis=0) - within_m
        x1, y1 = line.xy.max(axis=0) + within_m
        cand = np.nonzero((pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1))[0]
        if len(cand) == 0:
            return set()
        d = line.distance_to(pts[cand])
        return {int(n) for n in cand[d < within_m]}
