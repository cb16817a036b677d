"""Counts a planner asks for first: sources, feeders, devices by kind, transformers, meters."""

from __future__ import annotations

from collections import Counter

import numpy as np

from gridmend.topology.elements import CUSTOMER_CLASS_CODES, KIND_CODES, SWITCHING_KINDS, Kind
from gridmend.topology.network import Topology


def summarise(topology: Topology) -> dict[str, object]:
    """Element counts of a traced grid, as plain JSON-ready data."""
    grid = topology.grid
    kinds = Counter(KIND_CODES[k] for k in grid.kind.tolist())
    switching = np.flatnonzero(np.isin(grid.kind, [KIND_CODES.index(k) for k in SWITCHING_KINDS]))
    normally_open = int(grid.normally_open[switching].sum())
    classes = Counter(
        str(CUSTOMER_CLASS_CODES[c]) for c in grid.customer_class[topology.meters].tolist()
    )
    energised = topology.energised_meters()
    return {
        "grid": grid.name,
        "sources": kinds[Kind.SOURCE],
        "feeders": len(topology.feeders()),
        "busbars": len(grid.bus_ids),
        "lines": kinds[Kind.LINE],
        "line_km": round(float(np.nansum(grid.length_m)) / 1000.0, 1),
        "devices": {str(k): kinds[k] for k in KIND_CODES if k in SWITCHING_KINDS and kinds[k]},
        "normally_open_devices": normally_open,
        "power_transformers": kinds[Kind.POWER_TRANSFORMER],
        "transformers": kinds[Kind.TRANSFORMER],
        "meters": kinds[Kind.METER],
        "customers_by_class": dict(sorted(classes.items())),
        "meters_without_supply": int(len(topology.meters) - energised[topology.meters].sum()),
    }
