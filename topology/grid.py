"""The grid as imported: buses, branch elements, sources and meters, stored column-wise.

A :class:`Grid` is plain data (numpy columns plus id lists) so that a million meters fit in
a few hundred megabytes. Importers fill a :class:`GridBuilder`, which collects every
problem it sees and refuses to produce a half-loaded grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pyproj import Geod

from gridmend.topology.elements import (
    BRANCH_KINDS,
    CUSTOMER_CLASS_CODES,
    KIND_CODES,
    POINT_KINDS,
    CustomerClass,
    Kind,
    ServiceClass,
)

KIND_INDEX = {kind: code for code, kind in enumerate(KIND_CODES)}
_GEOD = Geod(ellps="WGS84")
CLASS_INDEX = {cls: code for code, cls in enumerate(CUSTOMER_CLASS_CODES)}


class GridValidationError(ValueError):
    """A grid file or model is broken; ``problems`` lists each one by element id."""

    def __init__(self, problems: list[str], source: str = "grid") -> None:
        self.problems = problems
        self.source = source
        shown = "\n  ".join(problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{source}: {len(problems)} problem(s):\n  {shown}{more}")


@dataclass
class Grid:
    """Column-wise grid model. Elements are indexed 0..n-1; buses 0..b-1."""

    name: str
    bus_ids: list[str]
    bus_lon: np.ndarray
    bus_lat: np.ndarray
    element_ids: list[str]
    kind: np.ndarray  # int8 code into KIND_CODES
    terminal_a: np.ndarray  # int32 bus index ("from", or the only bus of a point element)
    terminal_b: np.ndarray  # int32 bus index ("to"), -1 for point elements
    normally_open: np.ndarray  # bool
    lon: np.ndarray  # element location (meters, sources, devices, transformers); nan if none
    lat: np.ndarray
    length_m: np.ndarray  # lines; nan elsewhere
    names: dict[int, str] = field(default_factory=dict)
    line_geometry: dict[int, np.ndarray] = field(default_factory=dict)  # (k, 2) lon/lat
    # Meter attributes, indexed by element index.
    customer_id: dict[int, str] = field(default_factory=dict)
    customer_class: np.ndarray | None = None  # int8 code per element (-1 for non-meters)
    address: dict[int, str] = field(default_factory=dict)
    # Transformer attributes.
    service_class: dict[int, ServiceClass] = field(default_factory=dict)
    # Free-form attributes kept for round trips (ratings, source table names …).
    attributes: dict[int, dict[str, object]] = field(default_factory=dict)
    _index: dict[str, int] | None = field(default=None, repr=False)
    _bus_index: dict[str, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.element_ids)

    @property
    def index(self) -> dict[str, int]:
        """Element id → element index (built once)."""
        if self._index is None:
            self._index = {eid: i for i, eid in enumerate(self.element_ids)}
        return self._index

    @property
    def bus_index(self) -> dict[str, int]:
        if self._bus_index is None:
            self._bus_index = {bid: i for i, bid in enumerate(self.bus_ids)}
        return self._bus_index

    def kind_of(self, element: int) -> Kind:
        return KIND_CODES[self.kind[element]]

    def indices_of(self, *kinds: Kind) -> np.ndarray:
        """Element indices of the given kinds, in element order."""
        codes = [KIND_INDEX[k] for k in kinds]
        return np.flatnonzero(np.isin(self.kind, codes))

    def class_of(self, meter: int) -> CustomerClass:
        assert self.customer_class is not None
        return CUSTOMER_CLASS_CODES[self.customer_class[meter]]

    def location(self, element: int) -> tuple[float, float]:
        """lon/lat of an element; branch elements without a point use their midpoint."""
        lon, lat = float(self.lon[element]), float(self.lat[element])
        if not math.isnan(lon):
            return lon, lat
        a, b = int(self.terminal_a[element]), int(self.terminal_b[element])
        if b < 0:
            return float(self.bus_lon[a]), float(self.bus_lat[a])
        return (
            float((self.bus_lon[a] + self.bus_lon[b]) / 2),
            float((self.bus_lat[a] + self.bus_lat[b]) / 2),
        )


class GridBuilder:
    """Collects buses and elements from an importer, then validates them all at once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[str] = []
        self._bus_ids: list[str] = []
        self._bus_lon: list[float] = []
        self._bus_lat: list[float] = []
        self._bus_index: dict[str, int] = {}
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._kind: list[int] = []
        self._a: list[int] = []
        self._b: list[int] = []
        self._open: list[bool] = []
        self._lon: list[float] = []
        self._lat: list[float] = []
        self._length: list[float] = []
        self._class: list[int] = []
        self.names: dict[int, str] = {}
        self.line_geometry: dict[int, np.ndarray] = {}
        self.customer_id: dict[int, str] = {}
        self.address: dict[int, str] = {}
        self.service_class: dict[int, ServiceClass] = {}
        self.attributes: dict[int, dict[str, object]] = {}

    # -- buses -------------------------------------------------------------------------
    def has_bus(self, bus_id: str) -> bool:
        return bus_id in self._bus_index

    def has_element(self, element_id: str) -> bool:
        return element_id in self._index

    def index_of(self, element_id: str) -> int | None:
        return self._index.get(element_id)

    def bus_location(self, bus_id: str) -> tuple[float, float]:
        i = self._bus_index[bus_id]
        return self._bus_lon[i], self._bus_lat[i]

    def add_bus(self, bus_id: str, lon: float | None, lat: float | None) -> None:
        if bus_id in self._bus_index or bus_id in self._index:
            self.problems.append(f"{bus_id}: duplicate id")
            return
        if lon is None or lat is None or _bad_coordinate(lon, lat):
            self.problems.append(f"{bus_id}: missing or invalid coordinates")
            lon, lat = math.nan, math.nan
        self._bus_index[bus_id] = len(self._bus_ids)
        self._bus_ids.append(bus_id)
        self._bus_lon.append(float(lon))
        self._bus_lat.append(float(lat))

    def _bus(self, element_id: str, bus_id: str | None, role: str) -> int:
        if bus_id is None or bus_id == "":
            self.problems.append(f"{element_id}: no {role} bus given")
            return -1
        index = self._bus_index.get(bus_id)
        if index is None:
            self.problems.append(f"{element_id}: unknown reference {role}={bus_id!r}")
            return -1
        return index

    # -- elements ----------------------------------------------------------------------
    def _add(
        self,
        element_id: str,
        kind: Kind,
        a: int,
        b: int,
        *,
        normally_open: bool = False,
        lon: float | None = None,
        lat: float | None = None,
        length_m: float | None = None,
        customer_class: CustomerClass | None = None,
        name: str | None = None,
    ) -> int:
        if element_id in self._index or element_id in self._bus_index:
            self.problems.append(f"{element_id}: duplicate id")
            return -1
        i = len(self._ids)
        self._index[element_id] = i
        self._ids.append(element_id)
        self._kind.append(KIND_INDEX[kind])
        self._a.append(a)
        self._b.append(b)
        self._open.append(bool(normally_open))
        self._lon.append(math.nan if lon is None else float(lon))
        self._lat.append(math.nan if lat is None else float(lat))
        self._length.append(math.nan if length_m is None else float(length_m))
        self._class.append(-1 if customer_class is None else CLASS_INDEX[customer_class])
        if name:
            self.names[i] = name
        return i

    def add_branch(
        self,
        element_id: str,
        kind: Kind,
        from_bus: str | None,
        to_bus: str | None,
        *,
        normally_open: bool = False,
        geometry: np.ndarray | list | None = None,
        length_m: float | None = None,
        lon: float | None = None,
        lat: float | None = None,
        name: str | None = None,
        service_class: ServiceClass | None = None,
        attributes: dict[str, object] | None = None,
    ) -> int:
        """A two-terminal element: line section, switching device or transformer."""
        if kind not in BRANCH_KINDS:
            self.problems.append(f"{element_id}: kind {kind} is not a two-terminal element")
            return -1
        a = self._bus(element_id, from_bus, "from")
        b = self._bus(element_id, to_bus, "to")
        if a >= 0 and a == b:
            self.problems.append(f"{element_id}: both terminals on bus {from_bus!r}")
        if kind == Kind.LINE and length_m is None and geometry is not None:
            length_m = _geodesic_length(np.asarray(geometry, dtype=float))
        if kind == Kind.LINE and length_m is None and a >= 0 and b >= 0:
            length_m = _geodesic_length(
                np.array(
                    [[self._bus_lon[a], self._bus_lat[a]], [self._bus_lon[b], self._bus_lat[b]]]
                )
            )
        i = self._add(
            element_id,
            kind,
            a,
            b,
            normally_open=normally_open,
            lon=lon,
            lat=lat,
            length_m=length_m,
            name=name,
        )
        if i < 0:
            return i
        if geometry is not None:
            coords = np.asarray(geometry, dtype=float)
            if coords.ndim != 2 or coords.shape[0] < 2 or coords.shape[1] < 2:
                self.problems.append(f"{element_id}: line geometry needs at least two points")
            else:
                self.line_geometry[i] = coords[:, :2]
        if service_class is not None:
            self.service_class[i] = service_class
        if attributes:
            self.attributes[i] = attributes
        return i

    def add_source(
        self,
        element_id: str,
        bus: str | None,
        *,
        lon: float | None = None,
        lat: float | None = None,
        name: str | None = None,
    ) -> int:
        a = self._bus(element_id, bus, "bus")
        if (lon is None or lat is None) and a >= 0:
            lon, lat = self._bus_lon[a], self._bus_lat[a]
        return self._add(element_id, Kind.SOURCE, a, -1, lon=lon, lat=lat, name=name)

    def add_meter(
        self,
        element_id: str,
        bus: str | None,
        *,
        customer_id: str | None = None,
        customer_class: CustomerClass = CustomerClass.RESIDENTIAL,
        address: str | None = None,
        lon: float | None = None,
        lat: float | None = None,
        name: str | None = None,
    ) -> int:
        """A meter / service point; one meter is one customer."""
        a = self._bus(element_id, bus, "bus")
        if (lon is None or lat is None) and a >= 0:
            lon, lat = self._bus_lon[a], self._bus_lat[a]
        if lon is None or lat is None or _bad_coordinate(lon, lat):
            self.problems.append(f"{element_id}: missing or invalid coordinates")
        i = self._add(
            element_id,
            Kind.METER,
            a,
            -1,
            lon=lon,
            lat=lat,
            customer_class=customer_class,
            name=name,
        )
        if i >= 0:
            self.customer_id[i] = customer_id or element_id
            if address:
                self.address[i] = address
        return i

    def add_element(self, element_id: str, kind: Kind, **kwargs: object) -> int:
        """Dispatch on kind: point elements take ``bus``, branches ``from_bus``/``to_bus``."""
        if kind == Kind.METER:
            return self.add_meter(element_id, **kwargs)  # type: ignore[arg-type]
        if kind == Kind.SOURCE:
            return self.add_source(element_id, **kwargs)  # type: ignore[arg-type]
        if kind in POINT_KINDS:
            raise AssertionError(kind)
        return self.add_branch(element_id, kind, **kwargs)  # type: ignore[arg-type]

    def build(self) -> Grid:
        """The finished grid, or GridValidationError listing every problem seen."""
        if not any(KIND_CODES[k] == Kind.SOURCE for k in self._kind):
            self.problems.append(f"{self.name}: the grid has no source (substation or infeed)")
        if self.problems:
            raise GridValidationError(self.problems, self.name)
        return Grid(
            name=self.name,
            bus_ids=self._bus_ids,
            bus_lon=np.asarray(self._bus_lon, dtype=np.float64),
            bus_lat=np.asarray(self._bus_lat, dtype=np.float64),
            element_ids=self._ids,
            kind=np.asarray(self._kind, dtype=np.int8),
            terminal_a=np.asarray(self._a, dtype=np.int32),
            terminal_b=np.asarray(self._b, dtype=np.int32),
            normally_open=np.asarray(self._open, dtype=bool),
            lon=np.asarray(self._lon, dtype=np.float64),
            lat=np.asarray(self._lat, dtype=np.float64),
            length_m=np.asarray(self._length, dtype=np.float64),
            names=self.names,
            line_geometry=self.line_geometry,
            customer_id=self.customer_id,
            customer_class=np.asarray(self._class, dtype=np.int8),
            address=self.address,
            service_class=self.service_class,
            attributes=self.attributes,
            _index=self._index,
            _bus_index=self._bus_index,
        )


def _bad_coordinate(lon: float, lat: float) -> bool:
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        return True
    return not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0)


def _geodesic_length(coords: np.ndarray) -> float:
    """Length in metres of a lon/lat polyline on the WGS-84 ellipsoid."""
    return float(_GEOD.line_length(coords[:, 0], coords[:, 1]))
