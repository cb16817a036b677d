"""Import a pandapower net (object or ``pandapower.to_json`` file) as a gridmend grid.

Ids keep pandapower's table and index (``bus/12``, ``line/45``, ``switch/120``,
``trafo/3``, ``load/17``, ``ext_grid/0``) so users can correlate with their source data;
elements gridmend has to derive get ids that say what they hang on.

How protective devices and transformer areas are derived (pandapower has neither fuses nor
reclosers, and MV-only nets model MV/LV stations as loads):

- ``switch`` rows become devices by type: ``CB`` → breaker (at LV buses, below 1 kV, a
  fuse: pandapower stores the NH fuse-disconnectors of LV cable cabinets as ``CB``), ``LBS``
  and ``LS`` → load-break switch, ``DS`` (or no type) → disconnector. ``closed == False``
  means normally open. A bus-line (``et='l'``) or bus-trafo (``et='t'``) switch sits between
  the bus and a junction ``bus/B@line/L`` that the line end is moved to.
- Every line leaving an MV busbar fed by an HV/MV transformer (or an MV ``ext_grid``)
  without a ``CB`` at that end gets a derived feeder breaker ``breaker@line/L`` — every
  real feeder bay has one.
- Every line leaving a distribution transformer's LV busbar gets a derived LV fuse
  ``fuse@line/L`` unless a pandapower switch already protects that end, as real LV boards
  have one fuse-way per outgoing cable.
- ``trafo`` rows with an LV side below 1 kV are distribution transformers (one transformer
  area each); the others are HV/MV power transformers inside a substation.
- A ``load`` is one meter. A load sitting directly on an MV bus whose ``type`` or name says
  it is an MV/LV station (MV-only nets) gets a derived transformer ``trafo@load/N`` to a
  derived LV bus ``bus@load/N``, so it still forms a transformer area; other MV loads are
  industrial customers metered at MV.
- Out-of-service elements are left out.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from gridmend.topology.elements import CustomerClass, Kind
from gridmend.topology.grid import Grid, GridBuilder, GridValidationError

LV_KV = 1.0


def read_pandapower_json(path: str | Path, name: str | None = None) -> Grid:
    """Load a file written by ``pandapower.to_json``."""
    import pandapower as pp

    path = Path(path)
    try:
        net = pp.from_json(str(path))
    except Exception as err:  # pandapower raises many kinds on a broken file
        raise GridValidationError(
            [f"not a readable pandapower JSON file: {err}"], str(path)
        ) from err
    return grid_from_pandapower(net, name=name or path.stem)


def _geo_point(value: Any) -> tuple[float | None, float | None]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, None
    if isinstance(value, str):
        value = json.loads(value)
    coords = value.get("coordinates") if isinstance(value, dict) else None
    if not coords:
        return None, None
    return float(coords[0]), float(coords[1])


def _geo_line(value: Any) -> np.ndarray | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        value = json.loads(value)
    coords = value.get("coordinates") if isinstance(value, dict) else None
    if not coords or len(coords) < 2:
        return None
    return np.asarray(coords, dtype=float)[:, :2]


def _bus_coordinates(net: Any) -> dict[int, tuple[float | None, float | None]]:
    if "geo" in net.bus.columns:
        return {int(i): _geo_point(g) for i, g in net.bus["geo"].items()}
    geodata = getattr(net, "bus_geodata", None)
    if geodata is not None and len(geodata):
        return {int(i): (float(r.x), float(r.y)) for i, r in geodata.iterrows()}
    return {}


def _in_service(table: Any) -> Any:
    if "in_service" in table.columns:
        return table[table["in_service"].astype(bool)]
    return table


def grid_from_pandapower(net: Any, name: str = "pandapower", prefix: str = "") -> Grid:
    """Build a grid from a pandapower net; ``prefix`` namespaces ids when merging nets."""
    builder = GridBuilder(name)
    add_pandapower(builder, net, prefix)
    return builder.build()


def add_pandapower(
    builder: GridBuilder,
    net: Any,
    prefix: str = "",
    *,
    bus_alias: dict[int, str] | None = None,
    skip_buses: set[int] | None = None,
    skip_trafos: set[int] | None = None,
    skip_loads: set[int] | None = None,
    with_sources: bool = True,
) -> dict[str, Any]:
    """Add a net's elements to ``builder`` (merging nets: alias buses, skip elements)."""
    p = prefix
    alias = bus_alias or {}
    skip_buses = (skip_buses or set()) | set(alias)
    coords = _bus_coordinates(net)
    vn_kv = {int(i): float(v) for i, v in net.bus["vn_kv"].items()}
    buses = _in_service(net.bus)
    for b in buses.index:
        if int(b) in skip_buses:
            continue
        lon, lat = coords.get(int(b), (None, None))
        builder.add_bus(f"{p}bus/{b}", lon, lat)

    def bus_ref(b: int) -> str:
        return alias.get(b, f"{p}bus/{b}")

    lines = _in_service(net.line)
    all_trafos = _in_service(net.trafo)
    trafos = all_trafos[~all_trafos.index.isin(sorted(skip_trafos or ()))]
    ext_grids = _in_service(net.ext_grid) if with_sources else net.ext_grid.iloc[0:0]
    switches = net.switch if len(net.switch) else net.switch.iloc[0:0]

    distribution = all_trafos[all_trafos["vn_lv_kv"] < LV_KV]
    power = trafos[trafos["vn_lv_kv"] >= LV_KV]
    lv_boards = {int(b) for b in distribution["lv_bus"]}
    feeder_bays = {int(b) for b in power["lv_bus"]} | {
        int(b) for b in ext_grids["bus"] if LV_KV <= vn_kv[int(b)] < 70.0
    }

    # Devices at element ends: (bus, element table, element index) -> [(id, kind, closed)].
    end_devices: dict[tuple[int, str, int], list[tuple[str, Kind, bool]]] = defaultdict(list)
    bus_bus: list[tuple[str, Kind, int, int, bool]] = []
    has_cb: set[tuple[int, int]] = set()
    for s in switches.itertuples():
        kind = _switch_kind(getattr(s, "type", None), vn_kv.get(int(s.bus), 20.0))
        closed = bool(s.closed)
        sid = f"{p}switch/{s.Index}"
        if s.et == "b":
            bus_bus.append((sid, kind, int(s.bus), int(s.element), closed))
        elif s.et in ("l", "t"):
            table = "line" if s.et == "l" else "trafo"
            end_devices[(int(s.bus), table, int(s.element))].append((sid, kind, closed))
            if s.et == "l" and getattr(s, "type", None) == "CB":
                has_cb.add((int(s.bus), int(s.element)))
    for line in lines.itertuples():
        for bus in (int(line.from_bus), int(line.to_bus)):
            key = (bus, "line", int(line.Index))
            if bus in feeder_bays and (bus, int(line.Index)) not in has_cb:
                end_devices[key].insert(0, (f"{p}breaker@line/{line.Index}", Kind.BREAKER, True))
            if bus in lv_boards and not end_devices[key]:
                end_devices[key].append((f"{p}fuse@line/{line.Index}", Kind.FUSE, True))

    def terminal(bus: int, table: str, index: int) -> str:
        """Bus id the element end attaches to, inserting its devices in series."""
        devices = end_devices.get((bus, table, index))
        here = bus_ref(bus)
        if not devices:
            return here
        lon, lat = builder.bus_location(here) if builder.has_bus(here) else (None, None)
        for device_id, kind, closed in devices:
            junction = f"{p}bus/{bus}@{table}/{index}#{device_id.removeprefix(p)}"
            builder.add_bus(junction, lon, lat)
            builder.add_branch(
                device_id, kind, here, junction, normally_open=not closed, lon=lon, lat=lat
            )
            here = junction
        return here

    for line in lines.itertuples():
        geometry = _geo_line(getattr(line, "geo", None))
        builder.add_branch(
            f"{p}line/{line.Index}",
            Kind.LINE,
            terminal(int(line.from_bus), "line", int(line.Index)),
            terminal(int(line.to_bus), "line", int(line.Index)),
            geometry=geometry,
            length_m=float(line.length_km) * 1000.0,
            name=str(line.name) if isinstance(line.name, str) else None,
        )
    for sid, kind, bus, other, closed in bus_bus:
        lon, lat = coords.get(bus, (None, None))
        builder.add_branch(
            sid,
            kind,
            f"{p}bus/{bus}",
            f"{p}bus/{other}",
            normally_open=not closed,
            lon=lon,
            lat=lat,
        )
    for t in trafos.itertuples():
        kind = Kind.TRANSFORMER if float(t.vn_lv_kv) < LV_KV else Kind.POWER_TRANSFORMER
        lon, lat = coords.get(int(t.lv_bus), (None, None))
        builder.add_branch(
            f"{p}trafo/{t.Index}",
            kind,
            terminal(int(t.hv_bus), "trafo", int(t.Index)),
            terminal(int(t.lv_bus), "trafo", int(t.Index)),
            lon=lon,
            lat=lat,
            name=str(t.name) if isinstance(t.name, str) else None,
            attributes={"rated_kva": round(float(t.sn_mva) * 1000.0, 1)},
        )
    for g in ext_grids.itertuples():
        builder.add_source(
            f"{p}ext_grid/{g.Index}",
            bus_ref(int(g.bus)),
            name=str(g.name) if isinstance(g.name, str) else None,
        )
    stations: dict[int, str] = {}
    loads = _in_service(net.load)
    loads = loads[~loads.index.isin(sorted(skip_loads or ()))]
    for load in loads.itertuples():
        bus = int(load.bus)
        load_id = f"{p}load/{load.Index}"
        label = f"{getattr(load, 'type', '') or ''} {load.name or ''}".lower()
        customer_class = CustomerClass.RESIDENTIAL
        bus_id = bus_ref(bus)
        if vn_kv[bus] >= LV_KV:
            if "station" in label or "lv load" in label:
                lon, lat = coords.get(bus, (None, None))
                lv_bus = f"{p}bus@load/{load.Index}"
                builder.add_bus(lv_bus, lon, lat)
                builder.add_branch(
                    f"{p}trafo@load/{load.Index}",
                    Kind.TRANSFORMER,
                    bus_id,
                    lv_bus,
                    lon=lon,
                    lat=lat,
                )
                bus_id = lv_bus
                stations[int(load.Index)] = f"{p}trafo@load/{load.Index}"
            else:
                customer_class = CustomerClass.INDUSTRIAL
        builder.add_meter(
            load_id,
            bus_id,
            customer_class=customer_class,
            name=str(load.name) if isinstance(load.name, str) else None,
        )
    return {"lv_boards": lv_boards, "feeder_bays": feeder_bays, "stations": stations}


def _switch_kind(switch_type: Any, bus_kv: float) -> Kind:
    text = str(switch_type or "").upper()
    if text == "CB":
        return Kind.FUSE if bus_kv < LV_KV else Kind.BREAKER
    if text in ("LBS", "LS"):
        return Kind.LOAD_BREAK_SWITCH
    return Kind.DISCONNECTOR
