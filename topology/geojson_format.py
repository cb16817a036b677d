"""gridmend's GeoJSON grid format: one FeatureCollection a utility GIS export can produce.

Every feature has an ``id`` (top level or ``properties.id``) and ``properties.kind``:

- ``busbar`` (or ``junction``): Point. A node of the grid.
- ``line``, ``breaker``, ``recloser``, ``sectionaliser``, ``fuse``, ``load_break_switch``,
  ``disconnector``, ``transformer``, ``power_transformer``: two-terminal elements with
  ``from`` and ``to`` bus ids. Lines carry a LineString (or none: drawn bus to bus) and
  optionally ``length_m``; devices and transformers a Point or none. Switching devices may
  say ``normally_open: true``; transformers may carry ``service_class``
  (``urban``/``rural``/``remote``).
- ``source``: Point, ``bus``: the busbar it feeds.
- ``meter``: Point, and either ``bus`` or ``parent`` (a transformer or other element whose
  ``to`` side serves it, for exports without the LV network); ``customer_id``,
  ``customer_class`` (residential, commercial, industrial, agricultural, hospital,
  water_works, emergency_command, telecom, life_support), ``address``.

Coordinates are WGS-84 lon/lat (RFC 7946). Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from gridmend.topology.elements import (
    BRANCH_KINDS,
    CustomerClass,
    Kind,
    ServiceClass,
    parse_kind,
)
from gridmend.topology.grid import Grid, GridBuilder, GridValidationError

FORMAT_NAME = "gridmend-grid"
FORMAT_VERSION = 1


def _open_text(path: Path, mode: str = "rt"):
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_geojson_grid(path: str | Path) -> Grid:
    """Load a grid file; GridValidationError lists every problem by element id."""
    path = Path(path)
    try:
        with _open_text(path) as fh:
            document = json.load(fh)
    except json.JSONDecodeError as err:
        raise GridValidationError(
            [f"line {err.lineno} column {err.colno}: not valid JSON ({err.msg})"], str(path)
        ) from err
    except OSError as err:
        raise GridValidationError([f"cannot read file: {err}"], str(path)) from err
    return grid_from_geojson(document, name=path.name.split(".")[0])


def grid_from_geojson(document: dict[str, Any], name: str = "grid") -> Grid:
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise GridValidationError(["the document is not a GeoJSON FeatureCollection"], name)
    meta = document.get("gridmend") or {}
    builder = GridBuilder(str(meta.get("name") or name))
    features = document.get("features")
    if not isinstance(features, list):
        raise GridValidationError(["'features' is missing or not a list"], name)

    parsed: list[tuple[str, Kind, dict[str, Any], dict[str, Any] | None]] = []
    for number, feature in enumerate(features):
        if not isinstance(feature, dict):
            builder.problems.append(f"feature #{number}: not an object")
            continue
        props = feature.get("properties") or {}
        element_id = feature.get("id", props.get("id"))
        if element_id is None or element_id == "":
            builder.problems.append(f"feature #{number}: no id")
            continue
        element_id = str(element_id)
        try:
            kind = parse_kind(str(props.get("kind", "")))
        except ValueError:
            builder.problems.append(f"{element_id}: unknown element kind {props.get('kind')!r}")
            continue
        parsed.append((element_id, kind, props, feature.get("geometry")))

    for element_id, kind, _props, geometry in parsed:
        if kind == Kind.BUSBAR:
            lon, lat = _point(geometry)
            builder.add_bus(element_id, lon, lat)

    # Meters may name a parent element instead of a bus: its "to" side serves them.
    branch_to_bus = {eid: p.get("to") for eid, k, p, _g in parsed if k in BRANCH_KINDS}
    for element_id, kind, props, geometry in parsed:
        if kind == Kind.BUSBAR:
            continue
        if kind in BRANCH_KINDS:
            _add_branch(builder, element_id, kind, props, geometry)
        elif kind == Kind.SOURCE:
            lon, lat = _point(geometry)
            builder.add_source(
                element_id, _ref(props, "bus"), lon=lon, lat=lat, name=props.get("name")
            )
        elif kind == Kind.METER:
            _add_meter(builder, element_id, props, geometry, branch_to_bus)
    return builder.build()


def _add_meter(
    builder: GridBuilder,
    element_id: str,
    props: dict[str, Any],
    geometry: dict[str, Any] | None,
    branch_to_bus: dict[str, Any],
) -> None:
    bus = _ref(props, "bus")
    parent = _ref(props, "parent")
    if bus is None and parent is not None:
        bus = branch_to_bus.get(parent)
        if bus is None:
            builder.problems.append(f"{element_id}: unknown reference parent={parent!r}")
            return
    lon, lat = _point(geometry)
    try:
        customer_class = CustomerClass(props.get("customer_class") or "residential")
    except ValueError:
        builder.problems.append(
            f"{element_id}: unknown customer class {props.get('customer_class')!r}"
        )
        return
    builder.add_meter(
        element_id,
        bus,
        customer_id=props.get("customer_id"),
        customer_class=customer_class,
        address=props.get("address"),
        lon=lon,
        lat=lat,
        name=props.get("name"),
    )


def _ref(props: dict[str, Any], key: str) -> str | None:
    value = props.get(key)
    return None if value is None or value == "" else str(value)


def _point(geometry: dict[str, Any] | None) -> tuple[float | None, float | None]:
    if not geometry or geometry.get("type") != "Point":
        return None, None
    coords = geometry.get("coordinates") or []
    if len(coords) < 2:
        return None, None
    return coords[0], coords[1]


def _add_branch(
    builder: GridBuilder,
    element_id: str,
    kind: Kind,
    props: dict[str, Any],
    geometry: dict[str, Any] | None,
) -> None:
    line = None
    lon = lat = None
    if geometry and geometry.get("type") == "LineString":
        line = np.asarray(geometry.get("coordinates") or [], dtype=float)
    elif geometry and geometry.get("type") == "Point":
        lon, lat = _point(geometry)
    service_class = None
    if props.get("service_class"):
        try:
            service_class = ServiceClass(props["service_class"])
        except ValueError:
            builder.problems.append(
                f"{element_id}: unknown service class {props['service_class']!r}"
            )
    attributes = {
        k: v
        for k, v in props.items()
        if k
        not in {"kind", "from", "to", "normally_open", "length_m", "name", "service_class", "id"}
    }
    builder.add_branch(
        element_id,
        kind,
        _ref(props, "from"),
        _ref(props, "to"),
        normally_open=bool(props.get("normally_open", False)),
        geometry=line,
        length_m=props.get("length_m"),
        lon=lon,
        lat=lat,
        name=props.get("name"),
        service_class=service_class,
        attributes=attributes or None,
    )


def grid_to_geojson(grid: Grid) -> dict[str, Any]:
    """The grid as a gridmend GeoJSON FeatureCollection (round-trips through the reader)."""
    features: list[dict[str, Any]] = []
    for i, bus_id in enumerate(grid.bus_ids):
        features.append(
            {
                "type": "Feature",
                "id": bus_id,
                "geometry": _point_geometry(grid.bus_lon[i], grid.bus_lat[i]),
                "properties": {"kind": "busbar"},
            }
        )
    bus_ids = grid.bus_ids
    for i, element_id in enumerate(grid.element_ids):
        kind = grid.kind_of(i)
        props: dict[str, Any] = {"kind": str(kind)}
        geometry: dict[str, Any] | None = None
        if kind in BRANCH_KINDS:
            props["from"] = bus_ids[grid.terminal_a[i]]
            props["to"] = bus_ids[grid.terminal_b[i]]
            if grid.normally_open[i]:
                props["normally_open"] = True
            if kind == Kind.LINE:
                if not np.isnan(grid.length_m[i]):
                    props["length_m"] = round(float(grid.length_m[i]), 2)
                coords = grid.line_geometry.get(i)
                if coords is not None:
                    geometry = {
                        "type": "LineString",
                        "coordinates": [[_r(x), _r(y)] for x, y in coords],
                    }
            elif not np.isnan(grid.lon[i]):
                geometry = _point_geometry(grid.lon[i], grid.lat[i])
            if i in grid.service_class:
                props["service_class"] = str(grid.service_class[i])
        else:
            props["bus"] = bus_ids[grid.terminal_a[i]]
            geometry = _point_geometry(grid.lon[i], grid.lat[i])
            if kind == Kind.METER:
                props["customer_id"] = grid.customer_id.get(i, element_id)
                props["customer_class"] = str(grid.class_of(i))
                if i in grid.address:
                    props["address"] = grid.address[i]
        if i in grid.names:
            props["name"] = grid.names[i]
        for key, value in grid.attributes.get(i, {}).items():
            props.setdefault(key, value)
        features.append(
            {"type": "Feature", "id": element_id, "geometry": geometry, "properties": props}
        )
    return {
        "type": "FeatureCollection",
        "gridmend": {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": grid.name},
        "features": features,
    }


def write_geojson_grid(grid: Grid, path: str | Path) -> None:
    path = Path(path)
    document = grid_to_geojson(grid)
    if path.suffix == ".gz":
        # mtime=0 keeps the compressed bytes reproducible.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(json.dumps(document, separators=(",", ":")).encode("utf-8"))
    else:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(document, fh, separators=(",", ":"))


def _r(value: float) -> float:
    return round(float(value), 7)


def _point_geometry(lon: float, lat: float) -> dict[str, Any] | None:
    if np.isnan(lon) or np.isnan(lat):
        return None
    return {"type": "Point", "coordinates": [_r(lon), _r(lat)]}
