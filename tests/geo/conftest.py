"""Shared fixtures for the geo room: the real Helsinki road graph and its networkx twin."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from gridmend.geo.osm_loader import load_road_graph
from gridmend.geo.road_graph import RoadGraph


@pytest.fixture(scope="session")
def road_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("road-cache")


@pytest.fixture()
def helsinki(road_cache) -> RoadGraph:
    """A fresh Helsinki graph per test (closures mutate it); loads from cache after the first."""
    return load_road_graph("helsinki", cache_directory=road_cache)


def reference_digraph(graph: RoadGraph, *, skip_closed: bool = True) -> nx.DiGraph:
    """networkx graph built from the same arrays, weights in deciseconds (the reference)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(graph.n_nodes))
    for e in range(graph.n_edges):
        if skip_closed and graph.closed[e]:
            continue
        u, v, w = int(graph.tail[e]), int(graph.head[e]), float(graph.base_time_ds[e])
        if not g.has_edge(u, v) or g[u][v]["w"] > w:
            g.add_edge(u, v, w=w)
    return g


def node_point(graph: RoadGraph, node: int) -> tuple[float, float]:
    return float(graph.node_lon[node]), float(graph.node_lat[node])


def nx_seconds(g: nx.DiGraph, a: int, b: int) -> float:
    try:
        return nx.dijkstra_path_length(g, a, b, weight="w") * 0.1
    except nx.NetworkXNoPath:
        return float("inf")


@pytest.fixture()
def rng():
    return np.random.default_rng(2024)
