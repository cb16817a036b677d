"""Reproducible road-like networks for benchmarks and scale tests.

A perturbed street lattice: residential streets (some one-way, alternating direction),
arterials every few blocks, a primary road every few more, a few missing links so that
routes must detour. Same seed → same graph, so benchmark figures are comparable.
"""

from __future__ import annotations

import numpy as np

from gridmend.geo.coordinates import LocalProjector
from gridmend.geo.road_graph import RoadGraph, build_road_graph


def lattice_road_graph(
    rows: int = 450,
    cols: int = 450,
    *,
    spacing_m: float = 120.0,
    centre: tuple[float, float] = (24.94, 60.17),
    one_way_share: float = 0.3,
    missing_share: float = 0.05,
    seed: int = 7,
) -> RoadGraph:
    """A rows × cols street grid around ``centre`` (≈ rows·cols nodes before SCC pruning)."""
    rng = np.random.default_rng(seed)
    proj = LocalProjector(*centre)
    x0, y0 = proj.forward(*centre)
    jitter = spacing_m * 0.25
    gx, gy = np.meshgrid(np.arange(cols) - cols / 2, np.arange(rows) - rows / 2)
    x = x0 + gx.ravel() * spacing_m + rng.uniform(-jitter, jitter, rows * cols)
    y = y0 + gy.ravel() * spacing_m + rng.uniform(-jitter, jitter, rows * cols)
    lon, lat = proj.inverse(x, y)
    ids = np.arange(rows * cols).reshape(rows, cols)

    tails, heads, classes, one_way = [], [], [], []
    # horizontal streets: row r; vertical streets: column c
    for horizontal in (True, False):
        a = ids[:, :-1] if horizontal else ids[:-1, :]
        b = ids[:, 1:] if horizontal else ids[1:, :]
        line = np.arange(rows if horizontal else cols)
        line = np.broadcast_to(line[:, None] if horizontal else line[None, :], a.shape)
        cls = np.where(line % 25 == 0, 2, np.where(line % 5 == 0, 1, 0))  # primary/arterial/res
        # one-way residential streets alternate direction street by street
        street_one_way = rng.random(rows if horizontal else cols) < one_way_share
        ow = (cls == 0) & (street_one_way[line])
        flip = (line % 2 == 1) & ow
        t = np.where(flip, b, a)
        h = np.where(flip, a, b)
        tails.append(t.ravel())
        heads.append(h.ravel())
        classes.append(cls.ravel())
        one_way.append(ow.ravel())
    t, h = np.concatenate(tails), np.concatenate(heads)
    cls, ow = np.concatenate(classes), np.concatenate(one_way)
    keep = (rng.random(t.size) >= missing_share) | (cls > 0)
    t, h, cls, ow = t[keep], h[keep], cls[keep], ow[keep]
    length = np.hypot(x[t] - x[h], y[t] - y[h]) * rng.uniform(1.0, 1.08, t.size)
    speed = np.array([25.0, 42.0, 60.0])[cls]
    highway = np.array(["residential", "secondary", "primary"])[cls]
    way = np.arange(t.size, dtype=np.int64)
    two = ~ow
    return build_road_graph(
        f"lattice-{rows}x{cols}",
        lon,
        lat,
        np.concatenate([t, h[two]]),
        np.concatenate([h, t[two]]),
        np.concatenate([length, length[two]]),
        np.concatenate([speed, speed[two]]),
        highway=np.concatenate([highway, highway[two]]),
        way_id=np.concatenate([way, way[two]]),
        source_info={"generator": "lattice_road_graph", "seed": seed},
    )
