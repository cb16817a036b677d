"""networkx reference model of a grid: slow, obvious, and the yardstick for the engine."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np

from gridmend.topology import Grid, Kind
from gridmend.topology.elements import BRANCH_KINDS


def closed_graph(grid: Grid, closed: np.ndarray) -> nx.Graph:
    """Buses as nodes; every closed branch element as an edge keyed by its id."""
    graph = nx.Graph()
    graph.add_nodes_from(range(len(grid.bus_ids)))
    for i in range(len(grid)):
        if grid.kind_of(i) in BRANCH_KINDS and closed[i]:
            graph.add_edge(int(grid.terminal_a[i]), int(grid.terminal_b[i]), element=i)
    return graph


def energised_meter_ids(grid: Grid, closed: np.ndarray) -> set[str]:
    """Meters connected to any source through closed elements."""
    graph = closed_graph(grid, closed)
    live: set[int] = set()
    for s in grid.indices_of(Kind.SOURCE):
        live |= nx.node_connected_component(graph, int(grid.terminal_a[s]))
    return {
        grid.element_ids[m] for m in grid.indices_of(Kind.METER) if int(grid.terminal_a[m]) in live
    }


def device_path(grid: Grid, closed: np.ndarray, meter: int, kinds: frozenset[Kind]) -> list[str]:
    """Devices of ``kinds`` on the path from the meter's bus to its source, nearest first."""
    graph = closed_graph(grid, closed)
    sources = {int(grid.terminal_a[s]): s for s in grid.indices_of(Kind.SOURCE)}
    start = int(grid.terminal_a[meter])
    lengths, paths = nx.single_source_shortest_path_length(graph, start), None
    target = next(b for b in sorted(sources, key=lambda b: lengths.get(b, 1 << 30)) if b in lengths)
    paths = nx.shortest_path(graph, start, target)
    out = []
    for u, v in itertools.pairwise(paths):
        element = graph.edges[u, v]["element"]
        if grid.kind_of(element) in kinds:
            out.append(grid.element_ids[element])
    return out
