"""The drivable road network as compact arrays: a CSR graph with integer travel times.

A :class:`RoadGraph` is what routing runs on. Directed edges are stored in CSR order
(grouped by tail node) with travel times in deciseconds, so a whole city fits in a few
megabytes, saves to one ``.npz`` and loads in milliseconds. Road closures reported by
crews change the weights in place and bump :attr:`RoadGraph.version` so that cached
answers elsewhere know they are stale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

#: Travel times are integers in this unit (deciseconds): exact sums, 4 bytes per edge.
TIME_UNIT_S = 0.1
#: Highest speed assumed for a loaded utility truck (km/h), whatever the sign says.
TRUCK_MAX_KMH = 90.0
#: Speeds (km/h) of a utility truck per OSM highway class where no ``maxspeed`` is tagged.
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 90.0,
    "motorway_link": 50.0,
    "trunk": 80.0,
    "trunk_link": 45.0,
    "primary": 60.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 35.0,
    "tertiary": 40.0,
    "tertiary_link": 30.0,
    "unclassified": 35.0,
    "residential": 25.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 30.0,
    "track": 15.0,
}
FALLBACK_SPEED_KMH = 25.0
#: Share of the posted limit a truck keeps on average (junctions, traffic, turning).
POSTED_SPEED_SHARE = 0.85
#: Implicit limits for zone codes ("FI:urban", "DE:rural" …), km/h.
_ZONE_SPEEDS = {"urban": 50.0, "rural": 80.0, "motorway": 120.0, "living_street": 10.0}
_WALK_KMH = 7.0


def parse_maxspeed(value: object) -> float | None:
    """Speed in km/h from an OSM ``maxspeed`` value, or None when it says nothing usable.

    Handles "50", "30 mph", "FI:urban", "walk", "none" and lists like "30;50" (the lowest).
    """
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    text = str(value).strip().lower()
    if not text or text in ("none", "signals", "variable", "no"):
        return None
    speeds = []
    for part in re.split(r"[;|,]", text):
        part = part.strip()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?", part)
        if m:
            v = float(m.group(1))
            speeds.append(v * 1.609344 if m.group(2) == "mph" else v)
            continue
        if part == "walk":
            speeds.append(_WALK_KMH)
            continue
        zone = part.split(":", 1)[-1]
        if zone in _ZONE_SPEEDS:
            speeds.append(_ZONE_SPEEDS[zone])
    speeds = [s for s in speeds if s > 0]
    return min(speeds) if speeds else None


def truck_speed_kmh(highway: str, maxspeed: object) -> float:
    """Average speed of a utility truck on a road of this class and posted limit."""
    posted = parse_maxspeed(maxspeed)
    cls = str(highway) if highway is not None else ""
    default = DEFAULT_SPEED_KMH.get(cls, FALLBACK_SPEED_KMH)
    speed = default if posted is None else posted * POSTED_SPEED_SHARE
    return float(min(max(speed, 5.0), TRUCK_MAX_KMH))


def travel_time_ds(length_m: np.ndarray, speed_kmh: np.ndarray) -> np.ndarray:
    """Edge travel times in whole deciseconds (at least 1, so no edge is free)."""
    t = np.ceil(np.asarray(length_m, float) / (np.asarray(speed_kmh, float) / 3.6) / TIME_UNIT_S)
    return np.maximum(t, 1).astype(np.int32)


@dataclass
class RoadGraph:
    """Directed road graph in CSR order. Nodes 0..n-1, edges 0..m-1 (sorted by tail)."""

    name: str
    node_lon: np.ndarray  # float64 (n,)
    node_lat: np.ndarray
    node_osm_id: np.ndarray  # int64 (n,), -1 where not from OSM
    indptr: np.ndarray  # int64 (n+1,)
    head: np.ndarray  # int32 (m,) — CSR column indices
    tail: np.ndarray  # int32 (m,)
    base_time_ds: np.ndarray  # int32 (m,) — travel time when open
    length_m: np.ndarray  # float32 (m,)
    speed_kmh: np.ndarray  # float32 (m,)
    highway: np.ndarray  # int16 (m,) code into highway_classes
    highway_classes: np.ndarray  # str (k,)
    way_id: np.ndarray  # int64 (m,)
    oneway: np.ndarray  # bool (m,) — True when no reverse twin exists
    twin: np.ndarray  # int64 (m,) — the same street in the other direction, -1 if one-way
    geom_offsets: np.ndarray  # int64 (m+1,)
    geom_lon: np.ndarray  # float64 — edge shapes, tail → head
    geom_lat: np.ndarray
    source_info: dict[str, object] = field(default_factory=dict)
    version: int = 0
    closed: np.ndarray | None = None  # bool (m,)
    _forward: sp.csr_matrix | None = field(default=None, repr=False)
    _reverse: sp.csr_matrix | None = field(default=None, repr=False)
    _reverse_pos: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.closed is None:
            self.closed = np.zeros(self.n_edges, dtype=bool)

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return int(self.node_lon.size)

    @property
    def n_edges(self) -> int:
        return int(self.head.size)

    # -- weights -----------------------------------------------------------------------
    @property
    def time_ds(self) -> np.ndarray:
        """Current edge travel times (deciseconds, float, inf where closed)."""
        return self.forward_csr().data

    def forward_csr(self) -> sp.csr_matrix:
        """Travel-time matrix tail → head (deciseconds as float64, inf = closed)."""
        if self._forward is None:
            data = self.base_time_ds.astype(np.float64)
            data[self.closed] = np.inf
            self._forward = sp.csr_matrix(
                (data, self.head, self.indptr), shape=(self.n_nodes, self.n_nodes)
            )
        return self._forward

    def reverse_csr(self) -> sp.csr_matrix:
        """The transposed graph (head → tail): for "who can reach this point" questions."""
        if self._reverse is None:
            order = np.argsort(self.head, kind="stable")
            indptr = np.zeros(self.n_nodes + 1, dtype=np.int64)
            np.cumsum(np.bincount(self.head, minlength=self.n_nodes), out=indptr[1:])
            data = self.forward_csr().data[order].copy()
            self._reverse = sp.csr_matrix(
                (data, self.tail[order], indptr), shape=(self.n_nodes, self.n_nodes)
            )
            pos = np.empty(self.n_edges, dtype=np.int64)
            pos[order] = np.arange(self.n_edges)
            self._reverse_pos = pos
        return self._reverse

    def _set_times(self, edges: np.ndarray, values: np.ndarray) -> None:
        self.forward_csr().data[edges] = values
        if self._reverse is not None:
            assert self._reverse_pos is not None
            self._reverse.data[self._reverse_pos[edges]] = values

    def close_edges(
        self, edges: Iterable[int] | np.ndarray, *, both_directions: bool = True
    ) -> int:
        """Close road edges (flooded, blocked by a fallen tree …); returns the new version.

        ``both_directions`` also closes the other carriageway of a two-way street, which is
        what a blocked street usually means.
        """
        e = self._edge_array(edges, both_directions)
        self.closed[e] = True
        self._set_times(e, np.full(e.size, np.inf))
        self.version += 1
        return self.version

    def reopen(
        self, edges: Iterable[int] | np.ndarray | None = None, *, both_directions=True
    ) -> int:
        """Reopen closed edges (all of them when ``edges`` is None); returns the new version."""
        e = (
            np.flatnonzero(self.closed)
            if edges is None
            else self._edge_array(edges, both_directions)
        )
        self.closed[e] = False
        self._set_times(e, self.base_time_ds[e].astype(np.float64))
        self.version += 1
        return self.version

    def _edge_array(self, edges, both_directions: bool) -> np.ndarray:
        e = np.unique(np.asarray(list(edges) if not isinstance(edges, np.ndarray) else edges))
        e = e.astype(np.int64)
        if e.size and (e.min() < 0 or e.max() >= self.n_edges):
            bad = e[(e < 0) | (e >= self.n_edges)][0]
            raise ValueError(f"edge {int(bad)} does not exist (graph has {self.n_edges} edges)")
        if both_directions and e.size:
            tw = self.twin[e]
            e = np.unique(np.concatenate([e, tw[tw >= 0]]))
        return e

    def edges_of_way(self, way_id: int) -> np.ndarray:
        """All directed edges of one OSM way — what a crew reports as "X street is blocked"."""
        return np.flatnonzero(self.way_id == way_id)

    def edges_between(self, u: int, v: int) -> np.ndarray:
        """Directed edges u → v (parallel streets possible)."""
        lo, hi = self.indptr[u], self.indptr[u + 1]
        return lo + np.flatnonzero(self.head[lo:hi] == v)

    # -- geometry ----------------------------------------------------------------------
    def edge_coords(self, e: int) -> np.ndarray:
        """(k, 2) lon/lat shape of an edge, tail → head."""
        lo, hi = self.geom_offsets[e], self.geom_offsets[e + 1]
        return np.column_stack([self.geom_lon[lo:hi], self.geom_lat[lo:hi]])

    def highway_of(self, e: int) -> str:
        return str(self.highway_classes[self.highway[e]])

    def summary(self) -> dict[str, object]:
        """Figures a planner checks before trusting ETAs: size, one-ways, speeds, closures."""
        km = float(self.length_m.astype(np.float64).sum()) / 1000.0
        n_total = self.source_info.get("nodes_before_scc")
        speeds = self.speed_kmh.astype(np.float64)
        by_class = {
            str(c): round(float(self.length_m[self.highway == i].sum()) / 1000.0, 2)
            for i, c in enumerate(self.highway_classes)
        }
        return {
            "name": self.name,
            "nodes": self.n_nodes,
            "edges": self.n_edges,
            "km_directed": round(km, 2),
            "one_way_share": round(float(self.oneway.mean()) if self.n_edges else 0.0, 4),
            "speed_kmh": {
                "min": round(float(speeds.min()), 1),
                "mean": round(float(np.average(speeds, weights=self.length_m)), 1),
                "max": round(float(speeds.max()), 1),
            },
            "km_by_class": by_class,
            "scc_share": round(self.n_nodes / n_total, 4) if n_total else None,
            "closed_edges": int(self.closed.sum()),
            "version": self.version,
            "cache_hit": self.source_info.get("cache_hit"),
            "load_seconds": round(float(self.source_info.get("load_seconds", 0.0)), 4),
            "source": self.source_info.get("path"),
        }

    # -- persistence -------------------------------------------------------------------
    _ARRAYS = (
        "node_lon",
        "node_lat",
        "node_osm_id",
        "indptr",
        "head",
        "tail",
        "base_time_ds",
        "length_m",
        "speed_kmh",
        "highway",
        "highway_classes",
        "way_id",
        "oneway",
        "twin",
        "geom_offsets",
        "geom_lon",
        "geom_lat",
    )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the graph (closures are not persisted)."""
        out = {k: getattr(self, k) for k in self._ARRAYS}
        out["name"] = np.array(self.name)
        out["nodes_before_scc"] = np.array(int(self.source_info.get("nodes_before_scc", -1)))
        return out

    @classmethod
    def from_arrays(cls, arrays, source_info: dict[str, object] | None = None) -> RoadGraph:
        kw = {k: np.asarray(arrays[k]) for k in cls._ARRAYS}
        info = dict(source_info or {})
        if "nodes_before_scc" in arrays and int(arrays["nodes_before_scc"]) >= 0:
            info["nodes_before_scc"] = int(arrays["nodes_before_scc"])
        return cls(name=str(arrays["name"]), source_info=info, **kw)


def build_road_graph(
    name: str,
    node_lon: np.ndarray,
    node_lat: np.ndarray,
    tail: np.ndarray,
    head: np.ndarray,
    length_m: np.ndarray,
    speed_kmh: np.ndarray,
    *,
    highway: np.ndarray | None = None,
    way_id: np.ndarray | None = None,
    node_osm_id: np.ndarray | None = None,
    geom_offsets: np.ndarray | None = None,
    geom_lon: np.ndarray | None = None,
    geom_lat: np.ndarray | None = None,
    largest_component: bool = True,
    source_info: dict[str, object] | None = None,
) -> RoadGraph:
    """Assemble a :class:`RoadGraph` from directed edge arrays (any order).

    Keeps only the largest strongly connected component when asked: a crew must be able to
    get to a fault *and back*, so dead-end fragments (clipped at the extract's border, or
    one-way stubs) would only produce "unreachable" answers.
    """
    node_lon = np.asarray(node_lon, np.float64)
    node_lat = np.asarray(node_lat, np.float64)
    tail = np.asarray(tail, np.int64)
    head = np.asarray(head, np.int64)
    m = tail.size
    n = node_lon.size
    if head.size != m or np.asarray(length_m).size != m or np.asarray(speed_kmh).size != m:
        raise ValueError("tail, head, length_m and speed_kmh must have one entry per edge")
    if m and (min(tail.min(), head.min()) < 0 or max(tail.max(), head.max()) >= n):
        raise ValueError(f"edge refers to a node outside 0..{n - 1}")
    length_m = np.asarray(length_m, np.float64)
    speed_kmh = np.asarray(speed_kmh, np.float64)
    if (speed_kmh <= 0).any() or not np.isfinite(speed_kmh).all():
        k = int(np.flatnonzero(~(speed_kmh > 0) | ~np.isfinite(speed_kmh))[0])
        raise ValueError(f"edge {k}: speed must be positive, got {speed_kmh[k]}")
    if highway is None:
        classes = np.array(["road"])
        hw = np.zeros(m, np.int16)
    else:
        classes, hw = np.unique(np.asarray(highway).astype(str), return_inverse=True)
        hw = hw.astype(np.int16)
    way = np.full(m, -1, np.int64) if way_id is None else np.asarray(way_id, np.int64)
    osm = np.full(n, -1, np.int64) if node_osm_id is None else np.asarray(node_osm_id, np.int64)
    if geom_offsets is None:  # straight segments
        geom_offsets = np.arange(0, 2 * m + 1, 2, dtype=np.int64)
        geom_lon = np.column_stack([node_lon[tail], node_lon[head]]).ravel()
        geom_lat = np.column_stack([node_lat[tail], node_lat[head]]).ravel()
    geom_offsets = np.asarray(geom_offsets, np.int64)
    geom_lon = np.asarray(geom_lon, np.float64)
    geom_lat = np.asarray(geom_lat, np.float64)
    # drop self-loops: they never shorten a route
    keep_edge = tail != head
    keep_node = np.ones(n, bool)
    if largest_component and m:
        g = sp.csr_matrix(
            (np.ones(int(keep_edge.sum())), (tail[keep_edge], head[keep_edge])), (n, n)
        )
        _, labels = connected_components(g, directed=True, connection="strong")
        biggest = np.bincount(labels).argmax()
        keep_node = labels == biggest
        keep_edge &= keep_node[tail] & keep_node[head]
    new_id = np.full(n, -1, np.int64)
    new_id[keep_node] = np.arange(int(keep_node.sum()))
    edges = np.flatnonzero(keep_edge)
    t, h = new_id[tail[edges]], new_id[head[edges]]
    order = np.lexsort((h, t))
    edges, t, h = edges[order], t[order], h[order]
    n2 = int(keep_node.sum())
    indptr = np.zeros(n2 + 1, np.int64)
    np.cumsum(np.bincount(t, minlength=n2), out=indptr[1:])
    # geometry gathered in the new edge order
    starts, ends = geom_offsets[edges], geom_offsets[edges + 1]
    counts = ends - starts
    new_offsets = np.zeros(edges.size + 1, np.int64)
    np.cumsum(counts, out=new_offsets[1:])
    gather = np.repeat(starts - new_offsets[:-1], counts) + np.arange(new_offsets[-1])
    lengths = length_m[edges]
    speeds = speed_kmh[edges]
    ways = way[edges]
    twin = _twins(t, h, ways, lengths)
    return RoadGraph(
        name=name,
        node_lon=node_lon[keep_node],
        node_lat=node_lat[keep_node],
        node_osm_id=osm[keep_node],
        indptr=indptr,
        head=h.astype(np.int32),
        tail=t.astype(np.int32),
        base_time_ds=travel_time_ds(lengths, speeds),
        length_m=lengths.astype(np.float32),
        speed_kmh=speeds.astype(np.float32),
        highway=hw[edges],
        highway_classes=classes,
        way_id=ways,
        oneway=twin < 0,
        twin=twin,
        geom_offsets=new_offsets,
        geom_lon=geom_lon[gather],
        geom_lat=geom_lat[gather],
        source_info={**(source_info or {}), "nodes_before_scc": n},
    )


def _twins(t: np.ndarray, h: np.ndarray, way: np.ndarray, length: np.ndarray) -> np.ndarray:
    """For each edge the reverse edge of the same street (same way, same ends), or -1."""
    m = t.size
    twin = np.full(m, -1, np.int64)
    if m == 0:
        return twin
    rounded = np.round(np.asarray(length, float), 1)
    fwd = pd.DataFrame({"a": t, "b": h, "w": way, "l": rounded, "e": np.arange(m)})
    rev = pd.DataFrame({"a": h, "b": t, "w": way, "l": rounded, "r": np.arange(m)})
    pairs = fwd.merge(rev, on=["a", "b", "w", "l"]).drop_duplicates("e")
    pairs = pairs[pairs["e"] != pairs["r"]]
    twin[pairs["e"].to_numpy()] = pairs["r"].to_numpy()
    return twin
