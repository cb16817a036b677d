"""Grid snapshots in the database: import a traced grid, reload it, query elements by area.

All SQL about the grid lives here. Imports are bulk inserts inside the caller's
transaction, so a snapshot is either complete or absent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from gridmend.db.errors import NotFound
from gridmend.db.repository import latest_import
from gridmend.db.types import SRID
from gridmend.topology.elements import (
    CUSTOMER_CLASS_CODES,
    KIND_CODES,
    Kind,
    ServiceClass,
)
from gridmend.topology.grid import KIND_INDEX, Grid
from gridmend.topology.models import GridBus, GridElement, GridSnapshot
from gridmend.topology.network import Topology
from gridmend.topology.summary import summarise

_CLASS_INDEX = {cls.value: code for code, cls in enumerate(CUSTOMER_CLASS_CODES)}


class UnknownSnapshot(NotFound):
    """No grid snapshot matches the requested name or id."""


@dataclass(frozen=True)
class BoundingBox:
    """An area in WGS-84 lon/lat."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def __post_init__(self) -> None:
        if not (self.min_lon <= self.max_lon and self.min_lat <= self.max_lat):
            raise ValueError(f"empty bounding box {self}")

    @property
    def polygon(self) -> BaseGeometry:
        return shapely.box(self.min_lon, self.min_lat, self.max_lon, self.max_lat)


def import_grid(session: Session, topology: Topology, source: str) -> GridSnapshot:
    """Write a traced grid as the next snapshot version of its name; the caller commits.

    Taking a :class:`Topology` (not a bare grid) means a grid that does not trace is refused
    before anything is written.
    """
    grid = topology.grid
    latest = session.scalar(
        select(func.max(GridSnapshot.version)).where(GridSnapshot.name == grid.name)
    )
    meters = int(np.count_nonzero(grid.kind == KIND_INDEX[Kind.METER]))
    snapshot = GridSnapshot(
        name=grid.name,
        version=(latest or 0) + 1,
        source=source,
        bus_count=len(grid.bus_ids),
        element_count=len(grid),
        meter_count=meters,
        summary=_jsonable(summarise(topology)),
    )
    session.add(snapshot)
    session.flush()
    if grid.bus_ids:
        session.execute(insert(GridBus), _bus_rows(snapshot.id, grid))
    if len(grid):
        session.execute(insert(GridElement), _element_rows(snapshot.id, grid))
    return snapshot


def _bus_rows(snapshot_id: int, grid: Grid) -> list[dict[str, Any]]:
    return [
        {"snapshot_id": snapshot_id, "idx": i, "bus_id": bus_id, "lon": _num(lon), "lat": _num(lat)}
        for i, (bus_id, lon, lat) in enumerate(
            zip(grid.bus_ids, grid.bus_lon.tolist(), grid.bus_lat.tolist(), strict=True)
        )
    ]


def element_geometry(grid: Grid, i: int) -> BaseGeometry | None:
    """What an element looks like on a map: its line path, or its point location."""
    path = grid.line_geometry.get(i)
    if path is not None:
        return shapely.linestrings(path)
    a, b = int(grid.terminal_a[i]), int(grid.terminal_b[i])
    if grid.kind[i] == KIND_INDEX[Kind.LINE] and a >= 0 and b >= 0:
        ends = np.array([[grid.bus_lon[a], grid.bus_lat[a]], [grid.bus_lon[b], grid.bus_lat[b]]])
        return None if np.isnan(ends).any() else shapely.linestrings(ends)
    lon, lat = grid.location(i)
    return None if math.isnan(lon) or math.isnan(lat) else shapely.Point(lon, lat)


def _element_rows(snapshot_id: int, grid: Grid) -> list[dict[str, Any]]:
    assert grid.customer_class is not None
    kinds = [KIND_CODES[k].value for k in grid.kind.tolist()]
    classes = grid.customer_class.tolist()
    rows = []
    for i, element_id in enumerate(grid.element_ids):
        geom = element_geometry(grid, i)
        bounds = geom.bounds if geom is not None else (None, None, None, None)
        service = grid.service_class.get(i)
        attributes = grid.attributes.get(i)
        rows.append(
            {
                "snapshot_id": snapshot_id,
                "idx": i,
                "element_id": element_id,
                "kind": kinds[i],
                "terminal_a": int(grid.terminal_a[i]),
                "terminal_b": int(grid.terminal_b[i]),
                "normally_open": bool(grid.normally_open[i]),
                "lon": _num(grid.lon[i]),
                "lat": _num(grid.lat[i]),
                "length_m": _num(grid.length_m[i]),
                "name": grid.names.get(i),
                "customer_id": grid.customer_id.get(i),
                "customer_class": CUSTOMER_CLASS_CODES[classes[i]].value
                if classes[i] >= 0
                else None,
                "address": grid.address.get(i),
                "service_class": service.value if service is not None else None,
                "attributes": _jsonable(attributes) if attributes else None,
                "geom": geom,
                "path_given": i in grid.line_geometry,
                "minx": bounds[0],
                "miny": bounds[1],
                "maxx": bounds[2],
                "maxy": bounds[3],
            }
        )
    return rows


def latest_snapshot(session: Session, name: str | None = None) -> GridSnapshot:
    """The newest snapshot (of ``name``, or of any grid); UnknownSnapshot if none."""
    snapshot = latest_import(session, GridSnapshot, name)
    if snapshot is None:
        raise UnknownSnapshot(
            f"no grid {name!r} in the database" if name else "no grid imported yet"
        )
    return snapshot


def get_snapshot(session: Session, snapshot_id: int) -> GridSnapshot:
    snapshot = session.get(GridSnapshot, snapshot_id)
    if snapshot is None:
        raise UnknownSnapshot(f"no grid snapshot {snapshot_id}")
    return snapshot


def list_snapshots(session: Session) -> Sequence[GridSnapshot]:
    return session.scalars(
        select(GridSnapshot).order_by(GridSnapshot.name, GridSnapshot.version)
    ).all()


def load_snapshot_grid(session: Session, snapshot_id: int) -> Grid:
    """Rebuild the column-wise :class:`Grid` of a snapshot, in its original element order."""
    snapshot = get_snapshot(session, snapshot_id)
    buses = session.execute(
        select(GridBus.bus_id, GridBus.lon, GridBus.lat)
        .where(GridBus.snapshot_id == snapshot_id)
        .order_by(GridBus.idx)
    ).all()
    columns = (
        GridElement.element_id,
        GridElement.kind,
        GridElement.terminal_a,
        GridElement.terminal_b,
        GridElement.normally_open,
        GridElement.lon,
        GridElement.lat,
        GridElement.length_m,
        GridElement.name,
        GridElement.customer_id,
        GridElement.customer_class,
        GridElement.address,
        GridElement.service_class,
        GridElement.attributes,
        GridElement.geom,
        GridElement.path_given,
    )
    rows = session.execute(
        select(*columns).where(GridElement.snapshot_id == snapshot_id).order_by(GridElement.idx)
    ).all()
    n = len(rows)
    names: dict[int, str] = {}
    line_geometry: dict[int, np.ndarray] = {}
    customer_id: dict[int, str] = {}
    address: dict[int, str] = {}
    service_class: dict[int, ServiceClass] = {}
    attributes: dict[int, dict[str, object]] = {}
    kind = np.fromiter((KIND_INDEX[Kind(r.kind)] for r in rows), dtype=np.int8, count=n)
    for i, r in enumerate(rows):
        if r.name is not None:
            names[i] = r.name
        if r.customer_id is not None:
            customer_id[i] = r.customer_id
        if r.address is not None:
            address[i] = r.address
        if r.service_class is not None:
            service_class[i] = ServiceClass(r.service_class)
        if r.attributes:
            attributes[i] = r.attributes
        if r.path_given and r.geom is not None:
            line_geometry[i] = shapely.get_coordinates(r.geom)
    return Grid(
        name=snapshot.name,
        bus_ids=[b.bus_id for b in buses],
        bus_lon=_floats(b.lon for b in buses),
        bus_lat=_floats(b.lat for b in buses),
        element_ids=[r.element_id for r in rows],
        kind=kind,
        terminal_a=np.fromiter((r.terminal_a for r in rows), dtype=np.int32, count=n),
        terminal_b=np.fromiter((r.terminal_b for r in rows), dtype=np.int32, count=n),
        normally_open=np.fromiter((r.normally_open for r in rows), dtype=bool, count=n),
        lon=_floats(r.lon for r in rows),
        lat=_floats(r.lat for r in rows),
        length_m=_floats(r.length_m for r in rows),
        names=names,
        line_geometry=line_geometry,
        customer_id=customer_id,
        customer_class=np.fromiter(
            (_CLASS_INDEX[r.customer_class] if r.customer_class else -1 for r in rows),
            dtype=np.int8,
            count=n,
        ),
        address=address,
        service_class=service_class,
        attributes=attributes,
    )


def elements_in_area(
    session: Session,
    snapshot_id: int,
    area: BoundingBox | BaseGeometry,
    kinds: Sequence[Kind] | None = None,
) -> list[str]:
    """Ids of the snapshot's elements whose geometry intersects ``area``, in element order.

    PostGIS answers with ``ST_Intersects`` on the GiST-indexed column; SQLite narrows by the
    stored bounding boxes and tests the exact geometry in memory.
    """
    shape = area.polygon if isinstance(area, BoundingBox) else area
    min_lon, min_lat, max_lon, max_lat = shape.bounds
    query = select(GridElement.element_id).where(GridElement.snapshot_id == snapshot_id)
    if kinds:
        query = query.where(GridElement.kind.in_([Kind(k).value for k in kinds]))
    if session.get_bind().dialect.name == "postgresql":
        query = query.where(
            func.ST_Intersects(GridElement.geom, func.ST_GeomFromText(shape.wkt, SRID))
        )
        return list(session.scalars(query.order_by(GridElement.idx)))
    query = query.add_columns(GridElement.geom).where(
        GridElement.minx <= max_lon,
        GridElement.maxx >= min_lon,
        GridElement.miny <= max_lat,
        GridElement.maxy >= min_lat,
    )
    candidates = session.execute(query.order_by(GridElement.idx)).all()
    if not candidates:
        return []
    hits = shapely.intersects(np.array([c.geom for c in candidates], dtype=object), shape)
    return [c.element_id for c, hit in zip(candidates, hits.tolist(), strict=True) if hit]


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _floats(values: Any) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def _jsonable(value: Any) -> Any:
    """Plain JSON data: numpy values become numbers, NaN becomes null, odd objects text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)
