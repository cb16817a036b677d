"""Road ETAs for dispatch: snap to road edges, route on the CSR graph, answer fast.

Two routers share one interface (:class:`Router`):

- :class:`RoadRouter` routes on a real :class:`~gridmend.geo.road_graph.RoadGraph` with
  scipy's compiled Dijkstra. Points are snapped onto the nearest road *edge* (not node) and
  the partial-edge time is added at both ends. "Which crew is nearest to this fault" is one
  Dijkstra from the fault on the reversed graph, so one-way streets count in the
  crew → fault direction. A time cap keeps storm-time matrices cheap.
- :class:`ApproximateRouter` is for grids without a road network: straight line × detour
  factor at a rural speed. Every answer it gives says ``approximate=True``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from shapely.ops import substring

from gridmend.geo.coordinates import LocalProjector, haversine_m
from gridmend.geo.road_graph import TIME_UNIT_S, RoadGraph

#: Straight-line → road distance factor used where no road network is known.
DETOUR_FACTOR = 1.3
#: Average speed of a crew on rural roads where no road network is known (km/h).
RURAL_SPEED_KMH = 50.0
#: A point farther than this from every road is outside the network's coverage.
MAX_SNAP_M = 2_000.0
_MATRIX_CHUNK = 32
#: A point this close to the end of a one-way street is at the junction, free to turn.
AT_NODE_M = 1.0

LonLat = tuple[float, float]
Points = np.ndarray | Sequence[LonLat]


class OutOfCoverageError(ValueError):
    """A point lies too far from the road network to be routed on it."""


@dataclass(frozen=True)
class Route:
    """Travel time and distance between two points, with the path when asked for."""

    seconds: float
    metres: float
    coordinates: list[LonLat] | None
    approximate: bool
    graph_version: int | None = None

    @property
    def reachable(self) -> bool:
        return math.isfinite(self.seconds)

    def geojson(self) -> dict:
        """The route as a GeoJSON LineString (empty coordinates when unreachable)."""
        coords = [[float(x), float(y)] for x, y in (self.coordinates or [])]
        return {"type": "LineString", "coordinates": coords}

    def to_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 1) if self.reachable else None,
            "minutes": round(self.seconds / 60.0, 2) if self.reachable else None,
            "metres": round(self.metres, 1) if self.reachable else None,
            "approximate": self.approximate,
            "graph_version": self.graph_version,
            "route": self.geojson(),
        }


@dataclass(frozen=True)
class Nearest:
    """The origin (e.g. crew) that reaches a destination first; index -1 if none can."""

    index: int
    seconds: float
    approximate: bool


def as_points(points: Points) -> np.ndarray:
    """(k, 2) float array of lon/lat; a single (lon, lat) pair becomes one row."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"expected lon/lat pairs of shape (k, 2), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        k = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"point {k} has no valid coordinates: {arr[k].tolist()}")
    return arr


class Router(ABC):
    """What dispatch needs from a road model: ETAs, matrices and "who is nearest"."""

    approximate: bool

    @abstractmethod
    def eta(self, from_lonlat: LonLat, to_lonlat: LonLat, *, geometry: bool = True) -> Route:
        """Travel time from one point to another, with the route when ``geometry``."""

    @abstractmethod
    def times_from_many(
        self, origins: Points, destination: LonLat, cap_s: float = math.inf
    ) -> np.ndarray:
        """Seconds from each origin to one destination (inf beyond ``cap_s``/unreachable)."""

    @abstractmethod
    def matrix(self, origins: Points, destinations: Points, cap_s: float = math.inf) -> np.ndarray:
        """Seconds from every origin to every destination, shape (origins, destinations)."""

    def nearest(self, origins: Points, destination: LonLat, cap_s: float = math.inf) -> Nearest:
        """The origin reaching ``destination`` first (index -1 if none within ``cap_s``)."""
        times = self.times_from_many(origins, destination, cap_s)
        if times.size == 0 or not np.isfinite(times).any():
            return Nearest(-1, math.inf, self.approximate)
        k = int(np.argmin(times))
        return Nearest(k, float(times[k]), self.approximate)

    def nearest_crew(
        self, fault_lonlat: LonLat, crew_lonlats: Points, cap_s: float = math.inf
    ) -> Nearest:
        """The crew that gets to a fault first by road."""
        return self.nearest(crew_lonlats, fault_lonlat, cap_s)

    def travel_time_matrix(
        self, origins: Points, destinations: Points, cap_s: float = math.inf
    ) -> np.ndarray:
        """Crew × fault travel times in seconds (alias of :meth:`matrix`)."""
        return self.matrix(origins, destinations, cap_s)


class ApproximateRouter(Router):
    """Straight line × detour factor at a rural speed, for grids without road data."""

    approximate = True

    def __init__(self, detour_factor: float = DETOUR_FACTOR, speed_kmh: float = RURAL_SPEED_KMH):
        if detour_factor < 1.0 or speed_kmh <= 0:
            raise ValueError(
                f"detour factor must be ≥ 1 and speed > 0 (got {detour_factor}, {speed_kmh})"
            )
        self.detour_factor = float(detour_factor)
        self.speed_ms = float(speed_kmh) / 3.6

    def _metres(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return haversine_m(a[..., 0], a[..., 1], b[..., 0], b[..., 1]) * self.detour_factor

    def eta(self, from_lonlat: LonLat, to_lonlat: LonLat, *, geometry: bool = True) -> Route:
        a, b = as_points(from_lonlat)[0], as_points(to_lonlat)[0]
        metres = float(self._metres(a, b))
        coords = [tuple(map(float, a)), tuple(map(float, b))] if geometry else None
        return Route(metres / self.speed_ms, metres, coords, approximate=True)

    def times_from_many(
        self, origins: Points, destination: LonLat, cap_s: float = math.inf
    ) -> np.ndarray:
        o = as_points(origins)
        t = self._metres(o, as_points(destination)[0][None, :]) / self.speed_ms
        return np.where(t <= cap_s, t, np.inf)

    def matrix(self, origins: Points, destinations: Points, cap_s: float = math.inf) -> np.ndarray:
        o, d = as_points(origins), as_points(destinations)
        t = self._metres(o[:, None, :], d[None, :, :]) / self.speed_ms
        return np.where(t <= cap_s, t, np.inf)


@dataclass(frozen=True)
class Snap:
    """Points placed on road edges: ``edge`` (directed, tail → head) at ``frac`` of its length."""

    edge: np.ndarray  # int64
    frac: np.ndarray  # float64 in [0, 1]
    distance_m: np.ndarray  # float64, point → road
    points: np.ndarray  # (k, 2) lon/lat as given

    def __len__(self) -> int:
        return int(self.edge.size)


class EdgeSnapper:
    """STRtree over road edge shapes (in local metres) that places points onto edges."""

    def __init__(self, graph: RoadGraph, projector: LocalProjector | None = None) -> None:
        self.graph = graph
        self.projector = projector or LocalProjector.for_points(graph.node_lon, graph.node_lat)
        # one shape per street: the lower-numbered direction of each two-way pair
        rep = np.flatnonzero((graph.twin < 0) | (np.arange(graph.n_edges) < graph.twin))
        self.edges = rep
        starts, ends = graph.geom_offsets[rep], graph.geom_offsets[rep + 1]
        counts = ends - starts
        gather = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        gather = gather + np.arange(int(counts.sum()))
        x, y = self.projector.forward(graph.geom_lon[gather], graph.geom_lat[gather])
        self.lines = shapely.linestrings(
            np.column_stack([x, y]), indices=np.repeat(np.arange(rep.size), counts)
        )
        self.tree = shapely.STRtree(self.lines)

    def snap(self, points: Points) -> Snap:
        p = as_points(points)
        x, y = self.projector.forward(p[:, 0], p[:, 1])
        pts = shapely.points(np.atleast_1d(x), np.atleast_1d(y))
        (which, line), dist = self.tree.query_nearest(pts, return_distance=True, all_matches=False)
        order = np.argsort(which, kind="stable")
        which, line, dist = which[order], line[order], dist[order]
        frac = shapely.line_locate_point(self.lines[line], pts[which], normalized=True)
        return Snap(self.edges[line].astype(np.int64), np.clip(frac, 0.0, 1.0), dist, p)


def _exhausted(graph: sp.csr_matrix, dist: np.ndarray) -> bool:
    """True when a limited search settled everything reachable (raising it cannot help):
    no open edge leads from a reached node to an unreached one."""
    dist = np.asarray(dist).ravel()
    reached = np.flatnonzero(np.isfinite(dist))
    if reached.size == 0:
        return True
    out = graph[reached]
    heads = out.indices[np.isfinite(out.data)]
    return not bool(np.isinf(dist[heads]).any())


def _part(frac: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Time of a fraction of an edge; a closed edge (inf) stays closed even at fraction 0."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(t), np.inf, frac * t)


class RoadRouter(Router):
    """Exact travel times on a road graph (scipy Dijkstra over CSR, time-capped)."""

    approximate = False

    def __init__(self, graph: RoadGraph, *, max_snap_m: float = MAX_SNAP_M) -> None:
        self.graph = graph
        self.snapper = EdgeSnapper(graph)
        self.max_snap_m = float(max_snap_m)

    # -- snapping ----------------------------------------------------------------------
    def snap(self, points: Points | Snap) -> Snap:
        """Place points on their nearest road edges; OutOfCoverageError if too far off.

        Snap crews once and pass the :class:`Snap` to the queries when asking about many
        faults: snapping is then not repeated per fault.
        """
        if isinstance(points, Snap):
            return points
        s = self.snapper.snap(points)
        far = s.distance_m > self.max_snap_m
        if far.any():
            k = int(np.flatnonzero(far)[0])
            p = as_points(points)[k]
            raise OutOfCoverageError(
                f"point {k} ({p[0]:.6f}, {p[1]:.6f}) is {s.distance_m[k]:.0f} m from the "
                f"nearest road of {self.graph.name} (limit {self.max_snap_m:.0f} m)"
            )
        return s

    def _leave(self, s: Snap) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Ways to set off from snapped points: (node, cost) via the edge, and via its twin."""
        g, t = self.graph, self.graph.time_ds
        tw = g.twin[s.edge]
        t_tw = np.where(tw >= 0, t[np.maximum(tw, 0)], np.inf)
        at_tail = (tw < 0) & (s.frac * g.length_m[s.edge] <= AT_NODE_M)
        return (
            g.head[s.edge].astype(np.int64),
            _part(1.0 - s.frac, t[s.edge]),
            g.tail[s.edge].astype(np.int64),
            np.where(at_tail, 0.0, _part(s.frac, t_tw)),
        )

    def _arrive(self, s: Snap) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Ways to arrive at snapped points: from the edge's tail, or from its head (twin)."""
        g, t = self.graph, self.graph.time_ds
        tw = g.twin[s.edge]
        t_tw = np.where(tw >= 0, t[np.maximum(tw, 0)], np.inf)
        at_head = (tw < 0) & ((1.0 - s.frac) * g.length_m[s.edge] <= AT_NODE_M)
        return (
            g.tail[s.edge].astype(np.int64),
            _part(s.frac, t[s.edge]),
            g.head[s.edge].astype(np.int64),
            np.where(at_head, 0.0, _part(1.0 - s.frac, t_tw)),
        )

    def _same_edge_blocks(self, o: Snap, d: Snap):
        """(origin rows, destination cols, ds) blocks where both share a street: the
        direct trip along it, which no node-to-node path can represent."""
        t = self.graph.time_ds
        for e in np.intersect1d(o.edge, d.edge):
            oi = np.flatnonzero(o.edge == e)
            di = np.flatnonzero(d.edge == e)
            fo, fd = o.frac[oi][:, None], d.frac[di][None, :]
            tw = self.graph.twin[e]
            along = _part(np.maximum(fd - fo, 0.0), np.full(fd.shape, t[e]))
            along = np.where(fd >= fo, along, np.inf)
            if tw >= 0:
                back = _part(np.maximum(fo - fd, 0.0), np.full(fo.shape, t[tw]))
                along = np.minimum(along, np.where(fo >= fd, back, np.inf))
            yield oi, di, along

    def _apply_same_edge(self, out: np.ndarray, o: Snap, d: Snap) -> np.ndarray:
        """``out`` (ds, origins × destinations) improved in place by same-street trips."""
        for oi, di, along in self._same_edge_blocks(o, d):
            block = np.ix_(oi, di)
            out[block] = np.minimum(out[block], along)
        return out

    def _same_edge(self, o: Snap, d: Snap) -> np.ndarray:
        """Direct along-edge times (ds) where origin and destination share a street."""
        return self._apply_same_edge(np.full((len(o), len(d)), np.inf), o, d)

    @staticmethod
    def _augmented(
        base: sp.csr_matrix, nodes1: np.ndarray, cost1, nodes2: np.ndarray, cost2
    ) -> sp.csr_matrix:
        """The graph plus one virtual node per query point, with edges to its entry nodes."""
        n, k = base.shape[0], nodes1.size
        indptr = np.concatenate([base.indptr, base.indptr[-1] + 2 * np.arange(1, k + 1)])
        indices = np.concatenate([base.indices, np.column_stack([nodes1, nodes2]).ravel()])
        data = np.concatenate([base.data, np.column_stack([cost1, cost2]).ravel()])
        index_type = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64
        return sp.csr_matrix(
            (data, indices.astype(index_type), indptr.astype(index_type)), shape=(n + k, n + k)
        )

    @staticmethod
    def _initial_limit(origins: np.ndarray, destination: np.ndarray) -> float:
        """First Dijkstra time limit (ds): twice the straight line at town speed, ≥ 1 min."""
        p = np.atleast_2d(origins)
        straight = float(haversine_m(p[:, 0], p[:, 1], destination[0], destination[1]).min())
        return max(600.0, 2.0 * straight / (30.0 / 3.6) / TIME_UNIT_S)

    @staticmethod
    def _limit(cap_s: float) -> float:
        return cap_s / TIME_UNIT_S if math.isfinite(cap_s) else np.inf

    @staticmethod
    def _gather(rows, n1, c1, n2, c2) -> np.ndarray:
        return np.minimum(rows[:, n1] + c1, rows[:, n2] + c2)

    # -- queries -----------------------------------------------------------------------
    def matrix(
        self,
        origins: Points | Snap,
        destinations: Points | Snap,
        cap_s: float = math.inf,
        *,
        workers: int = 1,
    ) -> np.ndarray:
        """Seconds from every origin to every destination; inf beyond ``cap_s``.

        One forward Dijkstra per origin (in chunks) from a virtual node placed on the
        origin's road edge; destinations are read off their edges' end nodes. ``workers`` > 1
        spreads the chunks over forked processes (scipy's Dijkstra holds the GIL); use it in
        batch jobs, not inside threaded servers.
        """
        o, d = self.snap(origins), self.snap(destinations)
        ln1, lc1, ln2, lc2 = self._leave(o)
        arrive = self._arrive(d)
        graph = self._augmented(self.graph.forward_csr(), ln1, lc1, ln2, lc2)
        job = _MatrixJob(graph, self.graph.n_nodes, self._limit(cap_s), arrive)
        chunks = [(lo, min(lo + _MATRIX_CHUNK, len(o))) for lo in range(0, len(o), _MATRIX_CHUNK)]
        out = np.empty((len(o), len(d)))
        if workers > 1 and len(chunks) > 1:
            results = _run_forked(job, chunks, workers)
        else:
            results = map(job.run, chunks)
        for (lo, hi), block in zip(chunks, results, strict=True):
            out[lo:hi] = block
        out = self._apply_same_edge(out, o, d)
        out *= TIME_UNIT_S
        out[out > cap_s] = np.inf
        return out

    def times_to_many(
        self, origin: LonLat, destinations: Points | Snap, cap_s: float = math.inf
    ) -> np.ndarray:
        """Seconds from one origin (e.g. a depot) to each destination."""
        return self.matrix([origin], destinations, cap_s)[0]

    def times_from_many(
        self, origins: Points | Snap, destination: LonLat, cap_s: float = math.inf
    ) -> np.ndarray:
        """Seconds from each origin to one destination: one Dijkstra on the reversed graph."""
        o, d = self.snap(origins), self.snap([destination])
        rows, _ = self._reverse_search(d, self._limit(cap_s))
        out = self._from_rows(rows, o, d) * TIME_UNIT_S
        out[out > cap_s] = np.inf
        return out

    def _reverse_search(self, d: Snap, limit: float) -> tuple[np.ndarray, sp.csr_matrix]:
        an1, ac1, an2, ac2 = self._arrive(d)
        graph = self._augmented(self.graph.reverse_csr(), an1, ac1, an2, ac2)
        rows = dijkstra(graph, directed=True, indices=[self.graph.n_nodes], limit=limit)
        return rows, graph

    def _from_rows(self, rows: np.ndarray, o: Snap, d: Snap) -> np.ndarray:
        ln1, lc1, ln2, lc2 = self._leave(o)
        times = self._gather(rows, ln1, lc1, ln2, lc2)[0]
        return self._apply_same_edge(times[:, None].copy(), o, d)[:, 0]

    def nearest(
        self, origins: Points | Snap, destination: LonLat, cap_s: float = math.inf
    ) -> Nearest:
        """The origin (crew) reaching ``destination`` (fault) first — exact, and fast.

        Searches outward from the fault on the reversed graph with a growing time limit:
        once the best crew found is within the limit, no crew beyond it can be faster.
        """
        o, d = self.snap(origins), self.snap([destination])
        if o.edge.size == 0:
            return Nearest(-1, math.inf, False)
        cap_ds = self._limit(cap_s)
        limit = self._initial_limit(o.points, d.points[0])
        while True:
            limit = min(limit, cap_ds)
            rows, graph = self._reverse_search(d, limit)
            times = self._from_rows(rows, o, d)
            k = int(np.argmin(times))
            best = float(times[k])
            if best <= limit or limit >= cap_ds:
                break
            if _exhausted(graph, rows):
                break
            limit *= 4.0
        seconds = best * TIME_UNIT_S
        if not math.isfinite(seconds) or seconds > cap_s:
            return Nearest(-1, math.inf, False)
        return Nearest(k, seconds, False)

    def eta(self, from_lonlat: LonLat, to_lonlat: LonLat, *, geometry: bool = True) -> Route:
        """Travel time, distance and (optionally) the route's shape between two points."""
        o, d = self.snap([from_lonlat]), self.snap([to_lonlat])
        ln1, lc1, ln2, lc2 = self._leave(o)
        an1, ac1, an2, ac2 = self._arrive(d)
        graph = self._augmented(self.graph.forward_csr(), ln1, lc1, ln2, lc2)
        v = self.graph.n_nodes
        direct = float(self._same_edge(o, d)[0, 0])
        # grow a time limit until the destination is settled within it (exact, and cheap
        # on a big graph for a short trip)
        limit = self._initial_limit(o.points[0], d.points[0])
        while True:
            dist, pred = dijkstra(
                graph, directed=True, indices=[v], return_predecessors=True, limit=limit
            )
            dist, pred = dist[0], pred[0]
            via = np.array([dist[an1[0]] + ac1[0], dist[an2[0]] + ac2[0]])
            best = float(min(via.min(), direct))
            if best <= limit or _exhausted(graph, dist):
                break
            limit *= 4.0
        version = self.graph.version
        if not math.isfinite(best):
            return Route(math.inf, math.inf, [] if geometry else None, False, version)
        pieces = self._route_pieces(o, d, pred, via, direct)
        metres = sum(float(self.graph.length_m[e]) * (b - a) for e, a, b in pieces)
        coords = self._route_coords(pieces) if geometry else None
        return Route(best * TIME_UNIT_S, metres, coords, False, version)

    def _route_pieces(self, o: Snap, d: Snap, pred, via, direct) -> list[tuple[int, float, float]]:
        """The route as (edge, from fraction, to fraction) pieces, origin to destination."""
        g = self.graph
        e_o, f_o, e_d, f_d = int(o.edge[0]), float(o.frac[0]), int(d.edge[0]), float(d.frac[0])
        if direct <= via.min():
            if f_d >= f_o and math.isfinite(float(g.time_ds[e_o])) and e_o == e_d:
                return [(e_o, f_o, f_d)]
            return [(int(g.twin[e_o]), 1.0 - f_o, 1.0 - f_d)]
        v = g.n_nodes
        arrive_node = int(g.tail[e_d]) if via[0] <= via[1] else int(g.head[e_d])
        nodes = [arrive_node]
        while pred[nodes[-1]] != v:
            nodes.append(int(pred[nodes[-1]]))
        nodes.reverse()
        pieces = []
        if nodes[0] == int(g.head[e_o]):
            pieces.append((e_o, f_o, 1.0))
        elif g.twin[e_o] >= 0:
            pieces.append((int(g.twin[e_o]), 1.0 - f_o, 1.0))
        # else: at the tail junction of a one-way street, nothing to drive
        t = g.time_ds
        for a, b in itertools.pairwise(nodes):
            candidates = g.edges_between(a, b)
            pieces.append((int(candidates[np.argmin(t[candidates])]), 0.0, 1.0))
        if via[0] <= via[1]:
            pieces.append((e_d, 0.0, f_d))
        elif g.twin[e_d] >= 0:
            pieces.append((int(g.twin[e_d]), 0.0, 1.0 - f_d))
        return pieces

    def _route_coords(self, pieces: list[tuple[int, float, float]]) -> list[LonLat]:
        proj = self.snapper.projector
        coords: list[LonLat] = []
        for e, a, b in pieces:
            shape = self.graph.edge_coords(e)
            if a > 0.0 or b < 1.0:
                x, y = proj.forward(shape[:, 0], shape[:, 1])
                part = substring(shapely.LineString(np.column_stack([x, y])), a, b, True)
                xy = shapely.get_coordinates(part)
                lon, lat = proj.inverse(xy[:, 0], xy[:, 1])
                shape = np.column_stack([lon, lat])
            for lon, lat in shape:
                point = (float(lon), float(lat))
                if not coords or coords[-1] != point:
                    coords.append(point)
        if len(coords) == 1:
            coords.append(coords[0])
        return coords

    # -- closures ----------------------------------------------------------------------
    def close_edges(self, edges, *, both_directions: bool = True) -> int:
        """Close road edges; later ETAs route around them. Returns the graph version."""
        return self.graph.close_edges(edges, both_directions=both_directions)

    def reopen(self, edges=None, *, both_directions: bool = True) -> int:
        return self.graph.reopen(edges, both_directions=both_directions)

    def close_within(self, area: shapely.Geometry) -> tuple[np.ndarray, int]:
        """Close every street that touches an area (lon/lat polygon, e.g. a flood zone)."""
        proj = self.snapper.projector
        metric = shapely.transform(area, lambda xy: np.column_stack(proj.forward(*xy.T)))
        hit = self.snapper.tree.query(metric, predicate="intersects")
        edges = self.snapper.edges[hit]
        tw = self.graph.twin[edges]
        edges = np.unique(np.concatenate([edges, tw[tw >= 0]]))
        if edges.size == 0:
            return edges, self.graph.version
        return edges, self.close_edges(edges)

    def close_near(self, lon: float, lat: float) -> tuple[np.ndarray, int]:
        """Close the street nearest a reported point (both directions); (edges, version)."""
        s = self.snap([(lon, lat)])
        e = int(s.edge[0])
        tw = int(self.graph.twin[e])
        edges = np.array([e] if tw < 0 else [e, tw])
        return edges, self.close_edges(edges)


@dataclass
class _MatrixJob:
    """One matrix computation, split into origin chunks that can run in any process."""

    graph: sp.csr_matrix
    n_nodes: int
    limit: float
    arrive: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

    def run(self, chunk: tuple[int, int]) -> np.ndarray:
        lo, hi = chunk
        rows = dijkstra(
            self.graph,
            directed=True,
            indices=np.arange(self.n_nodes + lo, self.n_nodes + hi),
            limit=self.limit,
        )
        return RoadRouter._gather(rows, *self.arrive)


_FORKED_JOB: _MatrixJob | None = None


def _forked_run(chunk: tuple[int, int]) -> np.ndarray:
    assert _FORKED_JOB is not None
    return _FORKED_JOB.run(chunk)


def _run_forked(job: _MatrixJob, chunks: list[tuple[int, int]], workers: int) -> list[np.ndarray]:
    """Run chunks in forked worker processes that inherit the graph without copying it."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    global _FORKED_JOB
    _FORKED_JOB = job
    try:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            return list(pool.map(_forked_run, chunks))
    finally:
        _FORKED_JOB = None


def covers(graph: RoadGraph, points: Points, margin_m: float = MAX_SNAP_M) -> bool:
    """Whether every point lies within the road network's extent (plus a margin)."""
    p = as_points(points)
    if p.size == 0:
        return True
    lat0 = float(np.median(graph.node_lat))
    dlat = margin_m / 111_320.0
    dlon = dlat / max(math.cos(math.radians(lat0)), 0.01)
    inside = (
        (p[:, 0] >= graph.node_lon.min() - dlon)
        & (p[:, 0] <= graph.node_lon.max() + dlon)
        & (p[:, 1] >= graph.node_lat.min() - dlat)
        & (p[:, 1] <= graph.node_lat.max() + dlat)
    )
    return bool(inside.all())


def router_for(graph: RoadGraph | None, points: Points | None = None) -> Router:
    """A road router when a road network covers the region, else the approximate one.

    ``points`` (e.g. the grid's buses) decide coverage: a Helsinki road graph does not route
    crews in Offenburg, so that region gets the approximation — which says so.
    """
    if graph is None:
        return ApproximateRouter()
    if points is not None and not covers(graph, points):
        return ApproximateRouter()
    return RoadRouter(graph)
