"""Load drivable road networks from OpenStreetMap files, offline, with a fast cache.

``.osm.pbf`` goes through pyrosm (its driving filter already drops footways, private
roads and the like); ``.osm``/XML goes through osmnx ``graph_from_xml``. Either way the
result is a :class:`~gridmend.geo.road_graph.RoadGraph`, cached as ``.npz`` in the cache
folder (``$GRIDMEND_CACHE_DIR`` or ``~/.cache/gridmend``) keyed by the source file's path,
size and modification time, so a second load takes milliseconds and any change to the
file rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gridmend.geo.road_graph import RoadGraph, build_road_graph, truck_speed_kmh

#: Bump when the prepared-graph format or the speed rules change: old caches are ignored.
CACHE_FORMAT = 4

#: OSM highway classes a utility truck may drive on.
DRIVABLE_HIGHWAYS: frozenset[str] = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
    }
)
_NO_ACCESS = frozenset({"no", "private"})
_FORWARD_ONLY = frozenset({"yes", "true", "1"})
_BACKWARD_ONLY = frozenset({"-1", "reverse"})
_IMPLIED_ONEWAY_JUNCTIONS = frozenset({"roundabout", "circular"})


class RoadNetworkError(ValueError):
    """A road file cannot be used; the message names the file and the problem."""


def cache_dir() -> Path:
    """Where prepared road graphs are kept (``$GRIDMEND_CACHE_DIR`` or ``~/.cache/gridmend``)."""
    env = os.environ.get("GRIDMEND_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "gridmend"


def resolve_road_source(source: str | Path) -> Path:
    """A road file by path, or a bundled road fixture by name (e.g. "helsinki")."""
    path = Path(source)
    if path.exists():
        return path
    from gridmend import fixtures

    roads = getattr(fixtures, "ROADS", {})
    if str(source) in roads:
        return fixtures.roads_path(str(source))
    known = ", ".join(sorted(roads)) or "none"
    raise RoadNetworkError(f"{source}: no such file, and not a bundled road network ({known})")


def _fingerprint(path: Path) -> dict[str, object]:
    st = path.stat()
    return {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "format": CACHE_FORMAT,
    }


def cache_file_for(path: Path, directory: Path | None = None) -> Path:
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    stem = path.name.split(".")[0]
    return (directory or cache_dir()) / f"roads-{stem}-{key}.npz"


def load_road_graph(
    source: str | Path, *, use_cache: bool = True, cache_directory: Path | None = None
) -> RoadGraph:
    """The drivable road graph of an OSM file (path or bundled name), from cache if fresh.

    ``graph.source_info`` tells where it came from, whether the cache was hit and how long
    loading took.
    """
    started = time.perf_counter()
    path = resolve_road_source(source)
    fingerprint = _fingerprint(path)
    cache = cache_file_for(path, cache_directory)
    if use_cache and cache.exists():
        graph = _read_cache(cache, fingerprint)
        if graph is not None:
            graph.source_info.update(
                cache_hit=True,
                cache_file=str(cache),
                load_seconds=time.perf_counter() - started,
            )
            return graph
    graph = parse_road_file(path)
    graph.source_info.update(path=str(path), cache_hit=False, cache_file=None)
    if use_cache:
        try:
            _write_cache(cache, graph, fingerprint)
            graph.source_info["cache_file"] = str(cache)
        except OSError as exc:  # a read-only home must not stop routing
            warnings.warn(f"could not write road cache {cache}: {exc}", stacklevel=2)
    graph.source_info["load_seconds"] = time.perf_counter() - started
    return graph


def _read_cache(cache: Path, fingerprint: dict[str, object]) -> RoadGraph | None:
    try:
        with np.load(cache, allow_pickle=False) as data:
            stored = json.loads(str(data["fingerprint"]))
            if stored != fingerprint:
                return None
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError):
        return None
    return RoadGraph.from_arrays(arrays, {"path": fingerprint["path"]})


def _write_cache(cache: Path, graph: RoadGraph, fingerprint: dict[str, object]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, fingerprint=np.array(json.dumps(fingerprint)), **graph.to_arrays())
    os.replace(tmp, cache)


def parse_road_file(path: Path) -> RoadGraph:
    """Parse an OSM file without any cache (slow path)."""
    name = path.name.lower()
    if name.endswith(".pbf"):
        return _from_pyrosm(path)
    if name.endswith((".osm", ".xml", ".osm.xml")):
        return _from_osmnx_xml(path)
    raise RoadNetworkError(f"{path}: unknown road file type (expected .osm.pbf, .osm or .xml)")


def _directions(oneway: pd.Series, junction: pd.Series, highway: pd.Series):
    """(forward allowed, backward allowed) per OSM way segment, by OSM one-way rules."""
    ow = oneway.fillna("").astype(str).str.strip().str.lower()
    jn = junction.fillna("").astype(str).str.strip().str.lower()
    hw = highway.fillna("").astype(str)
    forward_only = ow.isin(_FORWARD_ONLY) | (
        (ow == "") & (jn.isin(_IMPLIED_ONEWAY_JUNCTIONS) | (hw == "motorway"))
    )
    backward_only = ow.isin(_BACKWARD_ONLY)
    return (~backward_only).to_numpy(), (~forward_only).to_numpy()


def _speeds(highway: pd.Series, maxspeed: pd.Series) -> np.ndarray:
    pairs = pd.DataFrame({"h": highway.astype(str), "m": maxspeed.astype(object)})
    pairs["m"] = pairs["m"].where(pairs["m"].notna(), None).astype(str)
    unique = pairs.drop_duplicates()
    table = {
        (h, m): truck_speed_kmh(h, None if m == "None" else m)
        for h, m in zip(unique["h"], unique["m"], strict=True)
    }
    return np.array([table[(h, m)] for h, m in zip(pairs["h"], pairs["m"], strict=True)])


def _tag(tags: pd.Series, key: str) -> pd.Series:
    def get(value):
        if isinstance(value, str) and key in value:
            try:
                return json.loads(value).get(key)
            except ValueError:
                return None
        if isinstance(value, dict):
            return value.get(key)
        return None

    return tags.map(get)


def _from_pyrosm(path: Path) -> RoadGraph:
    from pyrosm import OSM

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = OSM(str(path)).get_network(network_type="driving", nodes=True)
    except Exception as exc:  # pyrosm raises bare Exceptions on broken files
        raise RoadNetworkError(f"{path}: cannot read OSM PBF: {exc}") from exc
    if result is None or result[1] is None or len(result[1]) == 0:
        raise RoadNetworkError(f"{path}: no drivable roads in this extract")
    nodes, edges = result
    edges = edges.reset_index(drop=True)
    col = lambda name: edges[name] if name in edges else pd.Series([None] * len(edges))  # noqa: E731
    tags = col("tags")
    junction = col("junction") if "junction" in edges else _tag(tags, "junction")
    access = col("access") if "access" in edges else _tag(tags, "access")
    keep = ~access.fillna("").astype(str).str.lower().isin(_NO_ACCESS).to_numpy()
    edges = edges[keep].reset_index(drop=True)
    junction = junction[keep].reset_index(drop=True)
    col = lambda name: edges[name] if name in edges else pd.Series([None] * len(edges))  # noqa: E731
    fwd, bwd = _directions(col("oneway"), junction, col("highway"))

    node_index = pd.Index(nodes["id"].to_numpy())
    u = node_index.get_indexer(edges["u"].to_numpy())
    v = node_index.get_indexer(edges["v"].to_numpy())
    ok = (u >= 0) & (v >= 0)
    geoms = edges.geometry.to_numpy()
    length = edges["length"].to_numpy(dtype=float)
    speed = _speeds(col("highway"), col("maxspeed"))
    highway = col("highway").astype(str).to_numpy()
    way = pd.to_numeric(col("id"), errors="coerce").fillna(-1).to_numpy(np.int64)
    f, b = fwd & ok, bwd & ok
    tail = np.concatenate([u[f], v[b]])
    head = np.concatenate([v[f], u[b]])
    shapes = np.concatenate([geoms[f], shapely.reverse(geoms[b])])
    coords, which = shapely.get_coordinates(shapes, return_index=True)
    offsets = np.zeros(shapes.size + 1, np.int64)
    np.cumsum(np.bincount(which, minlength=shapes.size), out=offsets[1:])
    return build_road_graph(
        path.name,
        nodes["lon"].to_numpy(float),
        nodes["lat"].to_numpy(float),
        tail,
        head,
        np.concatenate([length[f], length[b]]),
        np.concatenate([speed[f], speed[b]]),
        highway=np.concatenate([highway[f], highway[b]]),
        way_id=np.concatenate([way[f], way[b]]),
        node_osm_id=nodes["id"].to_numpy(np.int64),
        geom_offsets=offsets,
        geom_lon=coords[:, 0],
        geom_lat=coords[:, 1],
        source_info={"path": str(path), "reader": "pyrosm"},
    )


def _first(value):
    return value[0] if isinstance(value, list) and value else value


def _from_osmnx_xml(path: Path) -> RoadGraph:
    import osmnx as ox

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = ox.graph_from_xml(path, bidirectional=False, simplify=False, retain_all=True)
    except Exception as exc:  # osmnx raises various errors on broken XML
        raise RoadNetworkError(f"{path}: cannot read OSM XML: {exc}") from exc
    node_ids = np.fromiter(g.nodes, dtype=np.int64, count=g.number_of_nodes())
    node_lon = np.array([g.nodes[n]["x"] for n in node_ids], float)
    node_lat = np.array([g.nodes[n]["y"] for n in node_ids], float)
    index = {int(n): i for i, n in enumerate(node_ids)}
    rows = []
    for u, v, data in g.edges(data=True):
        hw = str(_first(data.get("highway", "")))
        access = str(_first(data.get("access", ""))).lower()
        if hw not in DRIVABLE_HIGHWAYS or access in _NO_ACCESS:
            continue
        geom = data.get("geometry")
        if geom is None:
            coords = [(g.nodes[u]["x"], g.nodes[u]["y"]), (g.nodes[v]["x"], g.nodes[v]["y"])]
        else:
            coords = list(geom.coords)
        rows.append(
            (
                index[int(u)],
                index[int(v)],
                float(data.get("length", 0.0)),
                truck_speed_kmh(hw, _first(data.get("maxspeed"))),
                hw,
                int(_first(data.get("osmid", -1))),
                coords,
            )
        )
    if not rows:
        raise RoadNetworkError(f"{path}: no drivable roads in this file")
    tail, head, length, speed, highway, way, shapes = zip(*rows, strict=True)
    counts = np.array([len(c) for c in shapes])
    offsets = np.zeros(len(shapes) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.array([p for c in shapes for p in c], float)
    return build_road_graph(
        path.name,
        node_lon,
        node_lat,
        np.array(tail),
        np.array(head),
        np.array(length),
        np.array(speed),
        highway=np.array(highway),
        way_id=np.array(way),
        node_osm_id=node_ids,
        geom_offsets=offsets,
        geom_lon=flat[:, 0],
        geom_lat=flat[:, 1],
        source_info={"path": str(path), "reader": "osmnx"},
    )
