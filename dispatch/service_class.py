"""Service class (urban / rural / remote) of each transformer area: it sets the arrival promise.

The grid's own ``service_class`` data wins. Where a transformer has none, the class is
derived from how many meters (customers) live around it, counted with a KD-tree in local
metres:

- **urban**: at least :attr:`DensityThresholds.urban_per_km2` meters per km² within
  ``near_radius_m`` (default 400/km² within 500 m ≈ 800 inhabitants/km² at two people per
  connection — between Eurostat's "urban cluster" (300/km²) and "urban centre" (1 500/km²));
- **remote**: fewer than :attr:`DensityThresholds.remote_per_km2` meters per km² within
  ``far_radius_m`` (default 20/km² within 2 km — a hamlet with nothing around it);
- **rural**: everything in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.spatial import cKDTree

from gridmend.geo.coordinates import LocalProjector
from gridmend.topology.elements import ARRIVAL_PROMISE_MINUTES, Kind, ServiceClass
from gridmend.topology.network import Topology


@dataclass(frozen=True)
class DensityThresholds:
    near_radius_m: float = 500.0
    urban_per_km2: float = 400.0
    far_radius_m: float = 2_000.0
    remote_per_km2: float = 20.0


def classify_density(
    near_per_km2: np.ndarray, far_per_km2: np.ndarray, thresholds: DensityThresholds
) -> list[ServiceClass]:
    """Service classes from meter densities around each transformer (vectorised)."""
    near = np.asarray(near_per_km2, float)
    far = np.asarray(far_per_km2, float)
    code = np.where(
        near >= thresholds.urban_per_km2, 0, np.where(far < thresholds.remote_per_km2, 2, 1)
    )
    order = (ServiceClass.URBAN, ServiceClass.RURAL, ServiceClass.REMOTE)
    return [order[c] for c in code.tolist()]


def derived_service_classes(
    topology: Topology, thresholds: DensityThresholds | None = None
) -> dict[int, ServiceClass]:
    """Service class of every transformer area from meter density alone."""
    thresholds = thresholds or DensityThresholds()
    grid = topology.grid
    transformers = grid.indices_of(Kind.TRANSFORMER)
    meters = topology.meters
    if len(transformers) == 0:
        return {}
    ok = np.isfinite(grid.lon[meters]) & np.isfinite(grid.lat[meters])
    mlon, mlat = grid.lon[meters][ok], grid.lat[meters][ok]
    if mlon.size == 0:
        return {int(t): ServiceClass.REMOTE for t in transformers}
    projector = LocalProjector.for_points(mlon, mlat)
    tree = cKDTree(projector.xy(mlon, mlat))
    t_loc = np.array([grid.location(int(t)) for t in transformers])
    t_xy = projector.xy(t_loc[:, 0], t_loc[:, 1])
    near = tree.query_ball_point(t_xy, thresholds.near_radius_m, return_length=True)
    far = tree.query_ball_point(t_xy, thresholds.far_radius_m, return_length=True)
    near_km2 = math.pi * (thresholds.near_radius_m / 1000.0) ** 2
    far_km2 = math.pi * (thresholds.far_radius_m / 1000.0) ** 2
    classes = classify_density(near / near_km2, far / far_km2, thresholds)
    return {int(t): c for t, c in zip(transformers.tolist(), classes, strict=True)}


def service_classes(
    topology: Topology, thresholds: DensityThresholds | None = None
) -> dict[int, ServiceClass]:
    """Service class per transformer element index: the grid's data, else derived."""
    given = topology.grid.service_class
    transformers = topology.grid.indices_of(Kind.TRANSFORMER).tolist()
    if all(t in given for t in transformers):
        return {t: given[t] for t in transformers}
    derived = derived_service_classes(topology, thresholds)
    return {t: given.get(t, derived[t]) for t in transformers}


class ServiceClassMap:
    """Service class of any element: its transformer area's, or the strictest below it.

    A fault on an MV device takes the class of the most demanding (urban first) transformer
    area it cuts off: the promise follows the customers who are waiting.
    """

    _STRICTNESS: ClassVar[dict[ServiceClass, int]] = {
        ServiceClass.URBAN: 0,
        ServiceClass.RURAL: 1,
        ServiceClass.REMOTE: 2,
    }

    def __init__(self, topology: Topology, classes: dict[int, ServiceClass] | None = None):
        self.topology = topology
        self.classes = classes if classes is not None else service_classes(topology)
        self._cache: dict[int, ServiceClass] = {}

    def of(self, element: int) -> ServiceClass:
        cached = self._cache.get(element)
        if cached is not None:
            return cached
        topo = self.topology
        kind = topo.kind(element)
        if kind == Kind.METER:
            t = topo.transformer_of(element)
            result = self.classes.get(t, ServiceClass.RURAL) if t >= 0 else ServiceClass.RURAL
        elif kind == Kind.TRANSFORMER:
            result = self.classes.get(element, ServiceClass.RURAL)
        else:
            try:
                below = topo.nodes_below(element, frozenset({Kind.TRANSFORMER}))
            except KeyError:  # a line section: use the nearest transformer area by chain
                below = np.empty(0, dtype=np.int64)
            found = [self.classes[int(t)] for t in below.tolist() if int(t) in self.classes]
            if element in self.classes:
                found.append(self.classes[element])
            result = min(found, key=self._STRICTNESS.__getitem__) if found else ServiceClass.RURAL
        self._cache[element] = result
        return result

    def promise_minutes(self, element: int) -> int:
        return ARRIVAL_PROMISE_MINUTES[self.of(element)]
