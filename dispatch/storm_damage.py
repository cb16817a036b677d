"""Which protective devices a storm operates: fragility curves over a wind or flood footprint.

A failed line section is cleared by the device feeding it (``Topology.node_above``), a
failed transformer takes its own area out; so damage comes out as device faults with the
time they happened — exactly what the report simulator and the replay need as truth.
Fragility follows the usual lognormal form (probability of failure given the peak gust);
line fragility is per kilometre, so long overhead sections fail more often than short ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy.stats import lognorm

from gridmend.geo.hurricane import StormTrack, peak_gusts
from gridmend.topology import Kind, Topology


@dataclass(frozen=True)
class Fragility:
    """Lognormal fragility: P(failure | gust) with median gust ``median_ms``."""

    median_ms: float
    beta: float

    def probability(self, gust_ms: np.ndarray) -> np.ndarray:
        return lognorm.cdf(np.asarray(gust_ms, dtype=float), s=self.beta, scale=self.median_ms)


@dataclass(frozen=True)
class WindFragility:
    """Per-kilometre line fragility (tree fall, broken conductors) and per-unit transformer
    fragility (pole-mounted units). Defaults follow published distribution-grid curves."""

    line_per_km: Fragility = field(default_factory=lambda: Fragility(58.0, 0.22))
    transformer: Fragility = field(default_factory=lambda: Fragility(70.0, 0.2))


@dataclass(frozen=True)
class DeviceFailure:
    """Truth for one fault: the device that operated, when, and why."""

    device: int  # element index of the protective device / transformer that cleared it
    time: float  # epoch seconds
    cause: str
    element: int  # the element that actually failed (line section or transformer)


def clearing_devices(topology: Topology, failed_elements: np.ndarray) -> np.ndarray:
    """The device that clears each failed element: a failed transformer takes out its own
    area; a failed line is cleared by the nearest protective device above it (a load-break
    switch cannot interrupt fault current)."""
    nodes = topology.nodes_above(failed_elements)
    out = np.empty(len(nodes), dtype=np.int64)
    for i, (node, element) in enumerate(zip(nodes.tolist(), failed_elements.tolist(), strict=True)):
        if node < 0 or topology.kind(element) == Kind.TRANSFORMER:
            out[i] = node
            continue
        chain = topology.protective_chain(node)
        out[i] = chain[0] if chain else node
    return out


def _earliest_per_device(failures: list[DeviceFailure]) -> list[DeviceFailure]:
    first: dict[int, DeviceFailure] = {}
    for failure in sorted(failures, key=lambda f: (f.time, f.device)):
        first.setdefault(failure.device, failure)
    return sorted(first.values(), key=lambda f: (f.time, f.device))


def wind_damage(
    topology: Topology,
    track: StormTrack,
    rng: np.random.Generator,
    fragility: WindFragility | None = None,
    intensity: float = 1.0,
) -> list[DeviceFailure]:
    """Device faults a hurricane causes on the grid (sampled; deterministic for the rng).

    ``intensity`` scales the gusts, for "what if it had been one category stronger".
    """
    fragility = fragility or WindFragility()
    grid = topology.grid
    lines = grid.indices_of(Kind.LINE)
    transformers = grid.indices_of(Kind.TRANSFORMER)
    elements = np.concatenate([lines, transformers])
    points = np.array([grid.location(int(e)) for e in elements.tolist()])
    gust, peak_time, _ = peak_gusts(track, points[:, 0], points[:, 1])
    gust = gust * intensity
    length_km = np.nan_to_num(grid.length_m[lines], nan=30.0) / 1000.0
    p_line = 1.0 - (1.0 - fragility.line_per_km.probability(gust[: len(lines)])) ** length_km
    p_transformer = fragility.transformer.probability(gust[len(lines) :])
    failed = rng.random(len(elements)) < np.concatenate([p_line, p_transformer])
    failed_elements = elements[failed]
    # Failures happen in the hour before the peak gust at that place.
    times = peak_time[failed] - rng.uniform(0.0, 3600.0, int(failed.sum()))
    devices = clearing_devices(topology, failed_elements)
    failures = [
        DeviceFailure(int(d), float(t), "wind: line down" if k == Kind.LINE else "wind", int(e))
        for d, t, e, k in zip(
            devices.tolist(),
            times.tolist(),
            failed_elements.tolist(),
            [grid.kind_of(int(e)) for e in failed_elements.tolist()],
            strict=True,
        )
        if d >= 0
    ]
    return _earliest_per_device(failures)


def flood_damage(
    topology: Topology,
    flood_area: shapely.Geometry,
    start: float,
    rise_s: float,
    rng: np.random.Generator,
    p_transformer: float = 0.85,
    p_line_per_km: float = 0.25,
) -> list[DeviceFailure]:
    """Device faults a flood causes: ground-level transformer stations and cables inside the
    flooded area fail as the water rises between ``start`` and ``start + rise_s``."""
    grid = topology.grid
    lines = grid.indices_of(Kind.LINE)
    transformers = grid.indices_of(Kind.TRANSFORMER)
    elements = np.concatenate([lines, transformers])
    points = np.array([grid.location(int(e)) for e in elements.tolist()])
    shapely.prepare(flood_area)
    inside = shapely.contains_xy(flood_area, points[:, 0], points[:, 1])
    length_km = np.nan_to_num(grid.length_m[lines], nan=30.0) / 1000.0
    p = np.concatenate(
        [1.0 - (1.0 - p_line_per_km) ** length_km, np.full(len(transformers), p_transformer)]
    )
    failed = inside & (rng.random(len(elements)) < p)
    failed_elements = elements[failed]
    times = start + rng.uniform(0.0, rise_s, len(failed_elements))
    devices = clearing_devices(topology, failed_elements)
    failures = [
        DeviceFailure(int(d), float(t), "flood", int(e))
        for d, t, e in zip(devices.tolist(), times.tolist(), failed_elements.tolist(), strict=True)
        if d >= 0
    ]
    return _earliest_per_device(failures)


def customers_out(topology: Topology, failures: list[DeviceFailure]) -> int:
    """Customers who lose supply when all these devices have operated."""
    return len(topology.deenergised_by([f.device for f in failures]))
