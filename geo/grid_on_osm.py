"""Build a realistic distribution grid on any OpenStreetMap extract.

So that a whole storm can be played on real streets: substations at a few points, MV
feeders that follow the streets (shortest paths on the road graph from each substation, so
the MV network is radial by construction), transformers every few hundred metres where
there are buildings, and meters at OSM buildings on LV cables from the nearest transformer.
Protection is what a utility would fit: a breaker at each feeder head, a recloser half-way
down main lines longer than ``recloser_min_main_m``, fuses where laterals leave the main
line and on each transformer's LV cables.
Hospitals, water works, fire stations and telecom buildings become critical customers.

The core, :func:`build_grid_on_roads`, is pure (arrays in, :class:`Grid` out);
:func:`grid_from_osm` reads the file.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from gridmend.geo.coordinates import LocalProjector
from gridmend.geo.road_graph import RoadGraph
from gridmend.topology.elements import CustomerClass, Kind, ServiceClass
from gridmend.topology.grid import Grid, GridBuilder

_CRITICAL_TAGS: dict[str, CustomerClass] = {
    "hospital": CustomerClass.HOSPITAL,
    "clinic": CustomerClass.HOSPITAL,
    "water_works": CustomerClass.WATER_WORKS,
    "wastewater_plant": CustomerClass.WATER_WORKS,
    "pumping_station": CustomerClass.WATER_WORKS,
    "water_tower": CustomerClass.WATER_WORKS,
    "fire_station": CustomerClass.EMERGENCY_COMMAND,
    "police": CustomerClass.EMERGENCY_COMMAND,
    "telephone_exchange": CustomerClass.TELECOM,
    "telecommunication": CustomerClass.TELECOM,
    "data_center": CustomerClass.TELECOM,
}
_COMMERCIAL = {
    "commercial", "retail", "office", "kiosk", "hotel", "supermarket", "public", "university",
    "school", "church", "museum", "civic", "government", "college", "train_station",
}  # fmt: skip
_INDUSTRIAL = {"industrial", "warehouse", "factory", "manufacture", "utility"}
_MULTI_UNIT = {"apartments", "residential", "block", "dormitory"}


@dataclass(frozen=True)
class Buildings:
    """Building footprints reduced to what a grid needs: a point and its kind of customer."""

    osm_id: np.ndarray  # int64
    lon: np.ndarray
    lat: np.ndarray
    customer_class: list[CustomerClass]
    units: np.ndarray  # meters in the building (flats in a block)
    address: list[str | None]

    def __len__(self) -> int:
        return int(self.lon.size)


def classify_building(tags: dict[str, object]) -> CustomerClass:
    """Customer class from OSM building/amenity/man_made/healthcare tags."""
    values = {str(tags.get(k) or "").lower() for k in ("amenity", "building", "man_made")}
    values |= {str(tags.get("healthcare") or "").lower(), str(tags.get("emergency") or "")}
    for v in values:
        if v in _CRITICAL_TAGS:
            return _CRITICAL_TAGS[v]
    building = str(tags.get("building") or "").lower()
    if building in _INDUSTRIAL or tags.get("industrial"):
        return CustomerClass.INDUSTRIAL
    if building in {"farm", "barn", "greenhouse", "farm_auxiliary"}:
        return CustomerClass.AGRICULTURAL
    if building in _COMMERCIAL or tags.get("shop") or tags.get("office") or tags.get("amenity"):
        return CustomerClass.COMMERCIAL
    return CustomerClass.RESIDENTIAL


def _levels(value: object) -> int:
    try:
        return max(1, min(int(float(str(value).split(";")[0])), 30))
    except (TypeError, ValueError):
        return 0


def read_buildings(path: Path, *, units_per_level: int = 2) -> Buildings:
    """Buildings of an OSM PBF (pyrosm), with customer classes and flats per block."""
    import warnings

    from pyrosm import OSM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gdf = OSM(str(path)).get_buildings()
    if gdf is None or len(gdf) == 0:
        raise ValueError(f"{path}: no buildings in this extract")
    gdf = gdf[gdf.geometry.notna()].reset_index(drop=True)
    points = gdf.geometry.representative_point()
    classes, units, addresses = [], [], []
    for i in range(len(gdf)):
        row = gdf.iloc[i]
        tags: dict[str, object] = {}
        if isinstance(row.get("tags"), str):
            with contextlib.suppress(ValueError):
                tags.update(json.loads(row["tags"]))
        for key in ("building", "amenity", "shop", "office", "man_made", "healthcare"):
            if key in gdf.columns and isinstance(row.get(key), str):
                tags[key] = row[key]
        classes.append(classify_building(tags))
        building = str(tags.get("building") or "").lower()
        levels = _levels(row.get("building:levels")) if "building:levels" in gdf.columns else 0
        if building in _MULTI_UNIT and classes[-1] == CustomerClass.RESIDENTIAL:
            units.append(max(1, (levels or 4) * units_per_level))
        else:
            units.append(1)
        street, number = row.get("addr:street"), row.get("addr:housenumber")
        addresses.append(f"{street} {number}" if isinstance(street, str) and number else None)
    return Buildings(
        osm_id=gdf["id"].to_numpy(np.int64),
        lon=points.x.to_numpy(float),
        lat=points.y.to_numpy(float),
        customer_class=classes,
        units=np.asarray(units, np.int64),
        address=addresses,
    )


def _undirected_lengths(graph: RoadGraph) -> tuple[sp.csr_matrix, dict[tuple[int, int], int]]:
    """Symmetric street-length matrix and, per node pair, the shortest road edge between them."""
    u = np.minimum(graph.tail, graph.head).astype(np.int64)
    v = np.maximum(graph.tail, graph.head).astype(np.int64)
    length = graph.length_m.astype(np.float64)
    order = np.lexsort((length, v, u))
    key = u[order] * graph.n_nodes + v[order]
    first = np.concatenate([[True], key[1:] != key[:-1]])
    edges = order[first]
    a, b, w = u[edges], v[edges], np.maximum(length[edges], 0.01)
    n = graph.n_nodes
    matrix = sp.csr_matrix(
        (np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), (n, n)
    )
    return matrix, {(int(x), int(y)): int(e) for x, y, e in zip(a, b, edges, strict=True)}


def _pick_substations(
    proj: LocalProjector, lon: np.ndarray, lat: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """k well-spread points among the load (k-means on building positions, seeded)."""
    from scipy.cluster.vq import kmeans2

    xy = proj.xy(lon, lat)
    k = max(1, min(k, len(xy)))
    centres, _ = kmeans2(xy, k, seed=seed, minit="++")
    return centres


def build_grid_on_roads(
    graph: RoadGraph,
    buildings: Buildings,
    *,
    name: str = "osm-grid",
    substations: list[tuple[float, float]] | None = None,
    n_substations: int = 2,
    transformer_spacing_m: float = 300.0,
    lv_cables_per_transformer: int = 4,
    recloser_min_main_m: float = 600.0,
    life_support_share: float = 0.005,
    service_class: ServiceClass = ServiceClass.URBAN,
    seed: int = 1,
) -> Grid:
    """A radial MV/LV grid along the streets of ``graph`` serving ``buildings``."""
    if len(buildings) == 0:
        raise ValueError(f"{name}: no buildings to connect")
    rng = np.random.default_rng(seed)
    proj = LocalProjector.for_points(graph.node_lon, graph.node_lat)
    node_xy = proj.xy(graph.node_lon, graph.node_lat)
    node_tree = cKDTree(node_xy)
    b_xy = proj.xy(buildings.lon, buildings.lat)

    # -- substations: road nodes nearest the given points or the load centres ------------
    if substations:
        sub_xy = proj.xy(*np.asarray(substations, float).T)
    else:
        sub_xy = _pick_substations(proj, buildings.lon, buildings.lat, n_substations, seed)
    sub_nodes = list(dict.fromkeys(int(i) for i in node_tree.query(sub_xy)[1]))

    # -- transformer sites: one per cell of the spacing grid that holds buildings --------
    cell = np.floor(b_xy / transformer_spacing_m).astype(np.int64)
    _, cell_id = np.unique(cell, axis=0, return_inverse=True)
    cell_id = cell_id.ravel()
    sites = []
    for c in range(int(cell_id.max()) + 1):
        members = b_xy[cell_id == c]
        sites.append(int(node_tree.query(members.mean(axis=0))[1]))
    transformer_nodes = np.array(sorted(set(sites) - set(sub_nodes)) or sites[:1], np.int64)
    t_tree = cKDTree(node_xy[transformer_nodes])
    b_transformer = t_tree.query(b_xy)[1]  # building → position in transformer_nodes

    # -- MV network: union of street paths from each transformer to its substation -------
    lengths, pair_edge = _undirected_lengths(graph)
    dist, pred, _src = dijkstra(
        lengths, directed=False, indices=sub_nodes, min_only=True, return_predecessors=True
    )
    reachable = np.isfinite(dist[transformer_nodes])
    if not reachable.all():
        bad = int(transformer_nodes[~reachable][0])
        raise ValueError(f"{name}: road node {bad} cannot be reached from any substation")
    parent: dict[int, int] = {}
    for t in transformer_nodes.tolist():
        v = t
        while v not in sub_nodes and v not in parent:
            parent[v] = int(pred[v])
            v = parent[v]
    children: dict[int, list[int]] = {}
    for c, p in parent.items():
        children.setdefault(p, []).append(c)
    is_transformer = set(transformer_nodes.tolist())
    # distance along the MV network from the substation
    depth_m = {s: 0.0 for s in sub_nodes}
    order: list[int] = []
    stack = list(sub_nodes)
    while stack:
        v = stack.pop()
        order.append(v)
        for c in children.get(v, []):
            depth_m[c] = depth_m[v] + float(lengths[v, c])
            stack.append(c)
    # farthest transformer below each node → the main line follows it
    far = {v: (depth_m[v] if v in is_transformer else -1.0) for v in order}
    for v in reversed(order):
        for c in children.get(v, []):
            far[v] = max(far[v], far[c])

    def keep_going(v: int) -> bool:
        return len(children.get(v, [])) == 1 and v not in is_transformer

    b = GridBuilder(name)

    def bus(v: int) -> str:
        bid = f"N{v}"
        if not b.has_bus(bid):
            b.add_bus(bid, float(graph.node_lon[v]), float(graph.node_lat[v]))
        return bid

    def section_shape(path: list[int]) -> np.ndarray:
        pieces = []
        for x, y in itertools.pairwise(path):
            e = pair_edge[(min(x, y), max(x, y))]
            shape = graph.edge_coords(e)
            if int(graph.tail[e]) != x:
                shape = shape[::-1]
            pieces.append(shape if not pieces else shape[1:])
        return np.vstack(pieces)

    counter = {"line": 0, "fuse": 0}

    def device(
        kind: Kind, did: str, at: int, name_: str | None = None, from_bus: str | None = None
    ) -> str:
        """Insert a switching device at node ``at``; returns the bus on its load side."""
        out = f"{did}-out"
        lon, lat = float(graph.node_lon[at]), float(graph.node_lat[at])
        b.add_bus(out, lon, lat)
        b.add_branch(did, kind, from_bus or bus(at), out, lon=lon, lat=lat, name=name_)
        return out

    for si, s in enumerate(sub_nodes, start=1):
        ss = f"SS{si}"
        b.add_source(ss, bus(s), name=f"Substation {si}")
        for fi, first in enumerate(sorted(children.get(s, []), key=lambda c: -far[c]), start=1):
            feeder = f"{ss}-F{fi}"
            head_bus = device(Kind.BREAKER, f"{feeder}-CB", s, f"{ss} feeder {fi} breaker")
            # walk the feeder: (section start bus, start node, first child, on main line)
            work = [(head_bus, s, first, True)]
            main_length = far[first]
            recloser_done = main_length < recloser_min_main_m
            while work:
                start_bus, start, nxt, main = work.pop()
                path = [start, nxt]
                while keep_going(path[-1]):
                    path.append(children[path[-1]][0])
                end = path[-1]
                if main and not recloser_done and depth_m[start] >= 0.5 * main_length:
                    start_bus = device(Kind.RECLOSER, f"{feeder}-R1", start, f"{feeder} recloser")
                    recloser_done = True
                counter["line"] += 1
                b.add_branch(
                    f"L{counter['line']}",
                    Kind.LINE,
                    start_bus,
                    bus(end),
                    geometry=section_shape(path),
                )
                kids = sorted(children.get(end, []), key=lambda c: -far[c])
                for k, c in enumerate(kids):
                    if main and k > 0:  # a lateral leaves the main line: fuse its head
                        counter["fuse"] += 1
                        fuse_bus = device(Kind.FUSE, f"{feeder}-FU{counter['fuse']}", end)
                        work.append((fuse_bus, end, c, False))
                    else:
                        work.append((bus(end), end, c, main))

    # -- transformers, LV cables and meters -----------------------------------------------
    meter_count = 0
    classes = buildings.customer_class
    for ti, t in enumerate(transformer_nodes.tolist()):
        tid = f"T{t}"
        lon, lat = float(graph.node_lon[t]), float(graph.node_lat[t])
        lv = f"{tid}-LV"
        b.add_bus(lv, lon, lat)
        b.add_branch(
            tid, Kind.TRANSFORMER, bus(t), lv, lon=lon, lat=lat, service_class=service_class
        )
        served = np.flatnonzero(b_transformer == ti)
        if served.size == 0:
            continue
        offset = b_xy[served] - node_xy[t]
        angle = np.arctan2(offset[:, 1], offset[:, 0])
        sector = np.floor((angle + math.pi) / (2 * math.pi) * lv_cables_per_transformer)
        sector = np.minimum(sector.astype(int), lv_cables_per_transformer - 1)
        for j in np.unique(sector):
            cable = served[sector == j]
            cable = cable[np.argsort(np.hypot(*(b_xy[cable] - node_xy[t]).T))]
            prev = device(Kind.FUSE, f"{tid}-LV{j + 1}-FU", t, from_bus=lv)
            for k in cable.tolist():
                here = f"B{buildings.osm_id[k]}-{k}"
                b.add_bus(here, float(buildings.lon[k]), float(buildings.lat[k]))
                counter["line"] += 1
                b.add_branch(f"L{counter['line']}", Kind.LINE, prev, here)
                prev = here
                cls = classes[k]
                for unit in range(int(buildings.units[k])):
                    meter_count += 1
                    meter_class = cls
                    if cls == CustomerClass.RESIDENTIAL and rng.random() < life_support_share:
                        meter_class = CustomerClass.LIFE_SUPPORT
                    b.add_meter(
                        f"M{meter_count}",
                        here,
                        customer_id=f"C{buildings.osm_id[k]}-{unit + 1}",
                        customer_class=meter_class,
                        address=buildings.address[k],
                    )
    return b.build()


def grid_from_osm(
    source: str | Path, *, cache_directory: Path | None = None, **options: object
) -> Grid:
    """A generated grid on the streets and buildings of an OSM PBF (path or bundled name)."""
    from gridmend.geo.osm_loader import load_road_graph, resolve_road_source

    path = resolve_road_source(source)
    graph = load_road_graph(path, cache_directory=cache_directory)
    buildings = read_buildings(path)
    options.setdefault("name", f"{path.name.split('.')[0]}-generated")
    return build_grid_on_roads(graph, buildings, **options)  # type: ignore[arg-type]
