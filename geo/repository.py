"""Road networks in the database: import an OSM road graph, reload it, find edges by area.

All road SQL lives here. An import is bulk inserts inside the caller's transaction, so a
network version is either complete or absent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from gridmend.db.errors import NotFound
from gridmend.db.repository import latest_import
from gridmend.db.types import SRID
from gridmend.geo.models import RoadEdge, RoadNetwork, RoadNode
from gridmend.geo.road_graph import RoadGraph

#: Rows per executemany call; keeps memory flat for networks with millions of edges.
CHUNK = 20_000


class UnknownRoadNetwork(NotFound):
    """No road network matches the requested name or id."""


def import_road_network(
    session: Session, graph: RoadGraph, source: str, name: str | None = None
) -> RoadNetwork:
    """Write a road graph as the next version of its name; the caller commits."""
    name = name or graph.name
    latest = session.scalar(select(func.max(RoadNetwork.version)).where(RoadNetwork.name == name))
    summary = {k: v for k, v in graph.summary().items() if k not in ("cache_hit", "load_seconds")}
    network = RoadNetwork(
        name=name,
        version=(latest or 0) + 1,
        source=source,
        node_count=graph.n_nodes,
        edge_count=graph.n_edges,
        highway_classes=[str(c) for c in graph.highway_classes.tolist()],
        summary=_plain(summary),
    )
    session.add(network)
    session.flush()
    nodes = [
        {"network_id": network.id, "idx": i, "osm_id": osm, "lon": lon, "lat": lat}
        for i, (osm, lon, lat) in enumerate(
            zip(
                graph.node_osm_id.tolist(),
                graph.node_lon.tolist(),
                graph.node_lat.tolist(),
                strict=True,
            )
        )
    ]
    for start in range(0, len(nodes), CHUNK):
        session.execute(insert(RoadNode), nodes[start : start + CHUNK])
    shapes = _edge_shapes(graph)
    classes = graph.highway_classes.tolist()
    columns = zip(
        graph.tail.tolist(),
        graph.head.tolist(),
        graph.way_id.tolist(),
        graph.highway.tolist(),
        graph.length_m.tolist(),
        graph.speed_kmh.tolist(),
        graph.base_time_ds.tolist(),
        graph.oneway.tolist(),
        graph.twin.tolist(),
        strict=True,
    )
    rows = []
    for e, (tail, head, way, highway, length, speed, time_ds, oneway, twin) in enumerate(columns):
        geom = shapes[e]
        bounds = geom.bounds if geom is not None else (None, None, None, None)
        rows.append(
            {
                "network_id": network.id,
                "idx": e,
                "tail": tail,
                "head": head,
                "way_id": way,
                "highway": str(classes[highway]),
                "length_m": length,
                "speed_kmh": speed,
                "base_time_ds": time_ds,
                "oneway": oneway,
                "twin": twin,
                "geom": geom,
                "minx": bounds[0],
                "miny": bounds[1],
                "maxx": bounds[2],
                "maxy": bounds[3],
            }
        )
        if len(rows) == CHUNK:
            session.execute(insert(RoadEdge), rows)
            rows = []
    if rows:
        session.execute(insert(RoadEdge), rows)
    return network


def _edge_shapes(graph: RoadGraph) -> list[BaseGeometry | None]:
    """Each edge's polyline (tail → head); None for an edge without two shape points."""
    counts = np.diff(graph.geom_offsets)
    coords = np.column_stack([graph.geom_lon, graph.geom_lat])
    shapes: list[BaseGeometry | None] = [None] * graph.n_edges
    drawable = np.flatnonzero(counts >= 2)
    if drawable.size:
        keep = np.repeat(counts >= 2, counts)
        lines = shapely.linestrings(coords[keep], indices=np.repeat(drawable, counts[drawable]))
        for e, line in zip(drawable.tolist(), lines.tolist(), strict=True):
            shapes[e] = line
    return shapes


def latest_road_network(session: Session, name: str | None = None) -> RoadNetwork:
    """The newest road network (of ``name``, or any); UnknownRoadNetwork if none."""
    network = latest_import(session, RoadNetwork, name)
    if network is None:
        raise UnknownRoadNetwork(
            f"no road network {name!r} in the database" if name else "no roads imported yet"
        )
    return network


def load_road_network(session: Session, network_id: int) -> RoadGraph:
    """Rebuild the :class:`RoadGraph` of a stored network, edge for edge in CSR order."""
    network = session.get(RoadNetwork, network_id)
    if network is None:
        raise UnknownRoadNetwork(f"no road network {network_id}")
    nodes = session.execute(
        select(RoadNode.osm_id, RoadNode.lon, RoadNode.lat)
        .where(RoadNode.network_id == network_id)
        .order_by(RoadNode.idx)
    ).all()
    edges = session.execute(
        select(
            RoadEdge.tail,
            RoadEdge.head,
            RoadEdge.way_id,
            RoadEdge.highway,
            RoadEdge.length_m,
            RoadEdge.speed_kmh,
            RoadEdge.base_time_ds,
            RoadEdge.oneway,
            RoadEdge.twin,
            RoadEdge.geom,
        )
        .where(RoadEdge.network_id == network_id)
        .order_by(RoadEdge.idx)
    ).all()
    n, m = len(nodes), len(edges)
    classes = list(network.highway_classes)
    code = {c: i for i, c in enumerate(classes)}
    tail = np.fromiter((e.tail for e in edges), dtype=np.int32, count=m)
    shapes = [
        shapely.get_coordinates(e.geom) if e.geom is not None else np.empty((0, 2)) for e in edges
    ]
    offsets = np.zeros(m + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in shapes])
    coords = np.concatenate(shapes) if shapes else np.empty((0, 2))
    arrays = {
        "name": np.array(network.name),
        "node_lon": np.fromiter((r.lon for r in nodes), dtype=np.float64, count=n),
        "node_lat": np.fromiter((r.lat for r in nodes), dtype=np.float64, count=n),
        "node_osm_id": np.fromiter((r.osm_id for r in nodes), dtype=np.int64, count=n),
        "indptr": np.concatenate([[0], np.cumsum(np.bincount(tail, minlength=n))]).astype(np.int64),
        "head": np.fromiter((e.head for e in edges), dtype=np.int32, count=m),
        "tail": tail,
        "base_time_ds": np.fromiter((e.base_time_ds for e in edges), dtype=np.int32, count=m),
        "length_m": np.fromiter((e.length_m for e in edges), dtype=np.float32, count=m),
        "speed_kmh": np.fromiter((e.speed_kmh for e in edges), dtype=np.float32, count=m),
        "highway": np.fromiter((code[e.highway] for e in edges), dtype=np.int16, count=m),
        "highway_classes": np.array(classes),
        "way_id": np.fromiter((e.way_id for e in edges), dtype=np.int64, count=m),
        "oneway": np.fromiter((e.oneway for e in edges), dtype=bool, count=m),
        "twin": np.fromiter((e.twin for e in edges), dtype=np.int64, count=m),
        "geom_offsets": offsets,
        "geom_lon": coords[:, 0].astype(np.float64),
        "geom_lat": coords[:, 1].astype(np.float64),
    }
    info = {"path": network.source, "network_id": network.id, "network_version": network.version}
    return RoadGraph.from_arrays(arrays, source_info=info)


def road_edges_in_area(session: Session, network_id: int, area: BaseGeometry) -> list[int]:
    """Edge indices whose shape intersects ``area`` (a storm footprint, a flooded zone).

    PostGIS uses ``ST_Intersects`` on the GiST-indexed shape; SQLite narrows by stored
    bounding boxes and tests the exact shape in memory.
    """
    min_lon, min_lat, max_lon, max_lat = area.bounds
    query = select(RoadEdge.idx).where(RoadEdge.network_id == network_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.where(func.ST_Intersects(RoadEdge.geom, func.ST_GeomFromText(area.wkt, SRID)))
        return list(session.scalars(query.order_by(RoadEdge.idx)))
    candidates = session.execute(
        query.add_columns(RoadEdge.geom)
        .where(
            RoadEdge.minx <= max_lon,
            RoadEdge.maxx >= min_lon,
            RoadEdge.miny <= max_lat,
            RoadEdge.maxy >= min_lat,
        )
        .order_by(RoadEdge.idx)
    ).all()
    if not candidates:
        return []
    hits = shapely.intersects(np.array([c.geom for c in candidates], dtype=object), area)
    return [c.idx for c, hit in zip(candidates, hits.tolist(), strict=True) if hit]


def list_road_networks(session: Session) -> Sequence[RoadNetwork]:
    return session.scalars(
        select(RoadNetwork).order_by(RoadNetwork.name, RoadNetwork.version)
    ).all()


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars become numbers, NaN becomes null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
