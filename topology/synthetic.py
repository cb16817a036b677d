"""Synthetic radial grids of realistic shape, from a few thousand to millions of meters.

Shape follows European/Chinese practice: substations feed 6–8 MV feeders, each a trunk with
a recloser half-way and fused laterals; transformers hang on laterals and serve 5–300
meters over 2–4 fused LV cables; adjacent feeders meet at normally open ties. Everything is
drawn from a seeded generator, so a (size, seed) pair always gives the same grid.

:func:`lv_layout` is shared with the fixture build, which grows LV areas around real MV/LV
stations that have no LV data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Transformer

from gridmend.topology.elements import CustomerClass, Kind, ServiceClass
from gridmend.topology.grid import CLASS_INDEX, KIND_INDEX, Grid

# Customer mix of a typical distribution utility; critical customers are rare but present.
CLASS_MIX: dict[CustomerClass, float] = {
    CustomerClass.RESIDENTIAL: 0.895,
    CustomerClass.COMMERCIAL: 0.08,
    CustomerClass.INDUSTRIAL: 0.015,
    CustomerClass.AGRICULTURAL: 0.0094,
    CustomerClass.HOSPITAL: 0.0002,
    CustomerClass.WATER_WORKS: 0.0002,
    CustomerClass.EMERGENCY_COMMAND: 0.0001,
    CustomerClass.TELECOM: 0.0001,
}


@dataclass(frozen=True)
class LvLayout:
    """An LV area around its board, in metres east/north of the transformer."""

    junction_xy: np.ndarray  # (k, 2)
    junction_parent: np.ndarray  # (k,) parent junction, -1 = hangs on the cable's fuse
    junction_cable: np.ndarray  # (k,) which outgoing cable (0..cables-1)
    meter_junction: np.ndarray  # (n,)
    meter_xy: np.ndarray  # (n, 2)
    cables: int


def lv_layout(rng: np.random.Generator, customers: int, cables: int | None = None) -> LvLayout:
    """Grow radial LV cables from a board: junctions every 25–45 m, ~3 service points each."""
    if cables is None:
        cables = int(np.clip(round(customers / 40) + 1, 2, 4))
    cables = max(1, min(cables, customers))
    k = max(cables, int(np.ceil(customers / 3)))
    cable = np.arange(k) % cables
    heading = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(cables) / cables
    xy = np.zeros((k, 2))
    parent = np.full(k, -1, dtype=np.int64)
    direction = np.zeros(k)
    last = np.full(cables, -1, dtype=np.int64)
    steps = rng.uniform(25.0, 45.0, size=k)
    turns = rng.normal(0.0, 0.25, size=k)
    branch = rng.random(k) < 0.18
    side = rng.choice([-1.0, 1.0], size=k)
    for j in range(k):
        c = cable[j]
        p = last[c]
        if p >= 0 and branch[j] and j >= 2 * cables:
            # Side branch from a random earlier junction of the same cable.
            candidates = np.arange(c, j, cables)
            p = int(candidates[rng.integers(len(candidates))])
            theta = direction[p] + side[j] * np.pi / 2.5
        else:
            theta = (direction[p] if p >= 0 else heading[c]) + turns[j]
        origin = xy[p] if p >= 0 else np.array([np.cos(heading[c]), np.sin(heading[c])]) * 8.0
        xy[j] = origin + steps[j] * np.array([np.cos(theta), np.sin(theta)])
        parent[j] = p
        direction[j] = theta
        if not branch[j] or p == last[c]:
            last[c] = j
    meter_junction = np.sort(rng.integers(0, k, size=customers))
    # Houses stand 8–20 m off the cable on either side.
    offset_angle = direction[meter_junction] + rng.choice([-1.0, 1.0], customers) * np.pi / 2
    distance = rng.uniform(8.0, 20.0, customers)
    meter_xy = xy[meter_junction] + np.column_stack(
        [np.cos(offset_angle) * distance, np.sin(offset_angle) * distance]
    )
    return LvLayout(xy, parent, cable, meter_junction, meter_xy, cables)


def draw_customer_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Customer class codes drawn from :data:`CLASS_MIX`."""
    classes = list(CLASS_MIX)
    p = np.array([CLASS_MIX[c] for c in classes])
    picks = rng.choice(len(classes), size=n, p=p / p.sum())
    codes = np.array([CLASS_INDEX[c] for c in classes], dtype=np.int8)
    return codes[picks]


class _Columns:
    """Accumulates buses and elements as numpy chunks; ids are made in bulk at the end."""

    def __init__(self) -> None:
        self.bus_x: list[np.ndarray] = []
        self.bus_y: list[np.ndarray] = []
        self.n_bus = 0
        self.kind: list[np.ndarray] = []
        self.a: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        self.open: list[np.ndarray] = []
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.length: list[np.ndarray] = []
        self.n = 0

    def buses(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(xy)
        start = self.n_bus
        self.bus_x.append(xy[:, 0])
        self.bus_y.append(xy[:, 1])
        self.n_bus += len(xy)
        return np.arange(start, self.n_bus)

    def elements(
        self,
        kind: Kind,
        a: np.ndarray,
        b: np.ndarray | None = None,
        xy: np.ndarray | None = None,
        length: np.ndarray | None = None,
        normally_open: bool = False,
    ) -> np.ndarray:
        a = np.atleast_1d(np.asarray(a, dtype=np.int64))
        m = len(a)
        self.kind.append(np.full(m, KIND_INDEX[kind], dtype=np.int8))
        self.a.append(a)
        self.b.append(np.full(m, -1) if b is None else np.atleast_1d(np.asarray(b)))
        self.open.append(np.full(m, normally_open))
        if xy is None:
            self.x.append(np.full(m, np.nan))
            self.y.append(np.full(m, np.nan))
        else:
            xy = np.atleast_2d(xy)
            self.x.append(xy[:, 0])
            self.y.append(xy[:, 1])
        self.length.append(np.full(m, np.nan) if length is None else np.atleast_1d(length))
        start = self.n
        self.n += m
        return np.arange(start, self.n)


def generate_grid(
    n_meters: int,
    seed: int = 0,
    *,
    centre: tuple[float, float] = (114.3, 30.6),
    name: str | None = None,
) -> Grid:
    """A radial grid with ``n_meters`` meters around ``centre`` (lon, lat); seeded."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    total = 0
    while total < n_meters:
        size = int(np.clip(rng.lognormal(np.log(45), 0.75), 5, 300))
        size = min(size, n_meters - total)
        sizes.append(size)
        total += size
    n_transformers = len(sizes)
    per_feeder = 36
    n_feeders = max(1, int(np.ceil(n_transformers / per_feeder)))
    feeders_per_substation = 6
    n_substations = max(1, int(np.ceil(n_feeders / feeders_per_substation)))

    cols = _Columns()
    # Substations on a coarse grid, ~6 km apart.
    side = int(np.ceil(np.sqrt(n_substations)))
    sub_xy = (
        np.array([[(i % side) * 6000.0, (i // side) * 6000.0] for i in range(n_substations)])
        - (side - 1) * 3000.0
    )
    sub_xy += rng.normal(0, 400, sub_xy.shape)
    sub_bus = cols.buses(sub_xy)
    cols.elements(Kind.SOURCE, sub_bus, xy=sub_xy)

    transformer_sizes = iter(sizes)
    trunk_ends: list[tuple[int, int]] = []  # (substation, trunk end bus)
    transformer_elements: list[int] = []
    transformer_xy: list[np.ndarray] = []
    meter_codes: list[np.ndarray] = []
    meter_transformer: list[np.ndarray] = []
    remaining = n_transformers
    for f in range(n_feeders):
        if remaining <= 0:
            break
        s = f // feeders_per_substation
        angle = 2 * np.pi * (f % feeders_per_substation) / feeders_per_substation
        angle += rng.normal(0, 0.15)
        heading = np.array([np.cos(angle), np.sin(angle)])
        head_xy = sub_xy[s] + heading * 50.0
        head_bus = cols.buses(head_xy)[0]
        cols.elements(Kind.BREAKER, [sub_bus[s]], [head_bus], xy=head_xy)
        # Trunk: 8–12 sections of 250–450 m with a recloser half-way.
        sections = int(rng.integers(8, 13))
        lengths = rng.uniform(250.0, 450.0, sections)
        turn = np.cumsum(rng.normal(0, 0.12, sections))
        steps = np.column_stack([np.cos(angle + turn), np.sin(angle + turn)]) * lengths[:, None]
        trunk_xy = head_xy + np.cumsum(steps, axis=0)
        trunk_bus = cols.buses(trunk_xy)
        starts = np.concatenate([[head_bus], trunk_bus[:-1]])
        recloser_at = sections // 2
        line_to = trunk_bus.copy()
        mid_xy = trunk_xy[recloser_at - 1] if recloser_at > 0 else head_xy
        recloser_bus = cols.buses(mid_xy + heading * 5.0)[0]
        line_to[recloser_at - 1] = recloser_bus if recloser_at > 0 else line_to[0]
        cols.elements(Kind.LINE, starts, line_to, length=lengths)
        if recloser_at > 0:
            cols.elements(Kind.RECLOSER, [recloser_bus], [trunk_bus[recloser_at - 1]], xy=mid_xy)
        trunk_ends.append((s, int(trunk_bus[-1])))
        # Laterals: each carries 2–6 transformers, starting with a fuse.
        count = min(per_feeder, remaining)
        remaining -= count
        while count > 0:
            on = int(rng.integers(0, sections))
            n_here = min(count, int(rng.integers(2, 7)))
            count -= n_here
            lat_angle = angle + rng.choice([-1.0, 1.0]) * np.pi / 2 + rng.normal(0, 0.2)
            lat_dir = np.array([np.cos(lat_angle), np.sin(lat_angle)])
            fuse_xy = trunk_xy[on] + lat_dir * 10.0
            fuse_bus = cols.buses(fuse_xy)[0]
            cols.elements(Kind.FUSE, [trunk_bus[on]], [fuse_bus], xy=fuse_xy)
            lat_len = rng.uniform(150.0, 350.0, n_here)
            lat_xy = fuse_xy + np.cumsum(lat_len)[:, None] * lat_dir
            lat_bus = cols.buses(lat_xy)
            cols.elements(
                Kind.LINE, np.concatenate([[fuse_bus], lat_bus[:-1]]), lat_bus, length=lat_len
            )
            for t_xy, t_hv in zip(lat_xy, lat_bus, strict=True):
                customers = next(transformer_sizes)
                lv_bus = cols.buses(t_xy + 3.0)[0]
                t = cols.elements(Kind.TRANSFORMER, [t_hv], [lv_bus], xy=t_xy)[0]
                transformer_elements.append(int(t))
                transformer_xy.append(t_xy)
                _grow_lv(cols, rng, lv_bus, t_xy, customers)
                meter_codes.append(draw_customer_classes(rng, customers))
                meter_transformer.append(np.full(customers, t))
    # Normally open ties between neighbouring feeder ends of each substation.
    for i in range(len(trunk_ends) - 1):
        (s1, end1), (s2, end2) = trunk_ends[i], trunk_ends[i + 1]
        if s1 == s2:
            cols.elements(Kind.LOAD_BREAK_SWITCH, [end1], [end2], normally_open=True)

    return _finish(
        cols,
        centre,
        name or f"synthetic-{n_meters}-{seed}",
        transformer_xy,
        transformer_elements,
        meter_codes,
    )


def _grow_lv(
    cols: _Columns, rng: np.random.Generator, board: int, board_xy: np.ndarray, customers: int
) -> None:
    layout = lv_layout(rng, customers)
    junction_bus = cols.buses(board_xy + layout.junction_xy)
    # One fuse per outgoing cable on the LV board.
    fuse_xy = np.repeat(board_xy[None, :], layout.cables, axis=0)
    fuse_bus = cols.buses(fuse_xy)
    cols.elements(Kind.FUSE, np.full(layout.cables, board), fuse_bus, xy=fuse_xy)
    upstream = np.where(
        layout.junction_parent >= 0,
        junction_bus[np.maximum(layout.junction_parent, 0)],
        fuse_bus[layout.junction_cable],
    )
    parent_xy = np.where(
        (layout.junction_parent >= 0)[:, None],
        layout.junction_xy[np.maximum(layout.junction_parent, 0)],
        0.0,
    )
    lengths = np.hypot(*(layout.junction_xy - parent_xy).T)
    cols.elements(Kind.LINE, upstream, junction_bus, length=lengths)
    cols.elements(Kind.METER, junction_bus[layout.meter_junction], xy=board_xy + layout.meter_xy)


def _finish(
    cols: _Columns,
    centre: tuple[float, float],
    name: str,
    transformer_xy: list[np.ndarray],
    transformer_elements: list[int],
    meter_codes: list[np.ndarray],
) -> Grid:
    to_lonlat = Transformer.from_crs(
        f"+proj=aeqd +lon_0={centre[0]} +lat_0={centre[1]} +datum=WGS84 +units=m",
        "EPSG:4326",
        always_xy=True,
    )
    bus_lon, bus_lat = to_lonlat.transform(np.concatenate(cols.bus_x), np.concatenate(cols.bus_y))
    lon, lat = to_lonlat.transform(np.concatenate(cols.x), np.concatenate(cols.y))
    kind = np.concatenate(cols.kind)
    prefix = {
        Kind.SOURCE: "substation",
        Kind.BREAKER: "breaker",
        Kind.RECLOSER: "recloser",
        Kind.FUSE: "fuse",
        Kind.LINE: "line",
        Kind.TRANSFORMER: "transformer",
        Kind.METER: "meter",
        Kind.LOAD_BREAK_SWITCH: "tie",
    }
    element_ids = [""] * len(kind)
    for k, label in prefix.items():
        where = np.flatnonzero(kind == KIND_INDEX[k])
        for serial, i in enumerate(where.tolist()):
            element_ids[i] = f"{label}/{serial}"
    customer_class = np.full(len(kind), -1, dtype=np.int8)
    meters = np.flatnonzero(kind == KIND_INDEX[Kind.METER])
    customer_class[meters] = np.concatenate(meter_codes) if meter_codes else []
    # Service class by distance from the grid's centre: dense core, rural ring, remote edge.
    service_class: dict[int, ServiceClass] = {}
    if transformer_xy:
        radius = np.hypot(*np.array(transformer_xy).T)
        cut1, cut2 = np.quantile(radius, [0.5, 0.9])
        for t, r in zip(transformer_elements, radius.tolist(), strict=True):
            service_class[t] = (
                ServiceClass.URBAN
                if r <= cut1
                else ServiceClass.RURAL
                if r <= cut2
                else ServiceClass.REMOTE
            )
    return Grid(
        name=name,
        bus_ids=[f"bus/{i}" for i in range(cols.n_bus)],
        bus_lon=np.asarray(bus_lon),
        bus_lat=np.asarray(bus_lat),
        element_ids=element_ids,
        kind=kind,
        terminal_a=np.concatenate(cols.a).astype(np.int32),
        terminal_b=np.concatenate(cols.b).astype(np.int32),
        normally_open=np.concatenate(cols.open),
        lon=np.asarray(lon),
        lat=np.asarray(lat),
        length_m=np.concatenate(cols.length).astype(np.float64),
        customer_class=customer_class,
        service_class=service_class,
    )


__all__ = ["LvLayout", "draw_customer_classes", "generate_grid", "lv_layout"]
