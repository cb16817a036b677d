"""Import an OpenDSS circuit (e.g. NREL SMART-DS feeders) as a gridmend grid.

Ids keep the OpenDSS class and name (``Line.l(r:p1ulv37-udt29lv)``,
``Transformer.tr(r:udt29-udt29lv)``, ``Load.load_p1ulv37``, ``Circuit.substation_uhs0_69``);
bus ids are OpenDSS bus names without phase suffixes. Elements gridmend has to derive get
ids that say what they hang on. The script is read by :mod:`opendss_script` (file:line for
every problem, gzip'd files allowed); nothing is half-loaded.

Mapping:

- ``Circuit`` / ``Vsource`` → source at its ``bus1``.
- ``Line`` → by what it is, in this order: a line switched by a ``Fuse`` object or named
  ``fuse…`` (name or linecode) → fuse; by a ``Recloser`` object or named ``recloser…`` →
  recloser; by a ``Relay`` object, or a ``switch=y`` line whose name or linecode says
  ``breaker`` → breaker. Other ``switch=y`` lines: ``padswitch`` (pad-mounted),
  ``goab…`` (gang-operated air break), ``elbswitch`` (load-break elbow) → load-break
  switch; ``disswitch``/``disconnect…`` and unrecognised switches → disconnector (nothing
  says it can break load). Every other line (``switch=n``) is a line section; its length
  comes from ``Length`` in ``Units`` (else the linecode's units; with neither, the bus-to-bus
  distance). Lines have no geometry: they are drawn bus to bus.
- ``enabled=n`` on a line (SMART-DS normally open ties), or an ``Open`` command → normally
  open.
- ``Transformer`` → distribution transformer (one transformer area) when its lowest
  secondary winding voltage is at most 1 kV, else power transformer. From = winding 1 bus, to =
  winding 2 bus; a split-phase 3-winding transformer has both secondaries on one LV bus.
- ``Load`` → one meter (one customer) at its ``bus1``: metered at MV (kV > 1) →
  industrial; three-phase, or 100 kW and more, on an LV service → commercial (SMART-DS
  homes are split-phase 120/240 V and stay below ~60 kW); else residential.
- Ignored: line codes (except for length units), capacitors, regulators, load shapes,
  monitors and other solution objects — they change no path from a source to a meter.

Data repairs (each derived element says what it stands in for):

- A bus only a switching device touches and that has no coordinates (SMART-DS ``…x`` ends of
  normally open ties toward feeders outside the data set) sits where the device is.
- Missing cutouts: SMART-DS names the buses of a lateral between transformer buses A and B
  ``A-Bx``, ``A-Bxx``, ``A-Bxxx``, the first element from A or B being a fuse cutout. Where
  such a bus is a dead end whose own part of the grid is cut off from the other end's (one
  of them without a source), the connection's first element is missing (feeder
  ``udt12274`` of ``uhs0_1247`` lacks all 55 ``Line.fuse…``, leaving 944 loads isolated in
  OpenDSS too): a fuse ``fuse@<bus>`` is derived from the other end to it. Two parts that
  both have a source are never joined. ``repair_cutouts=False`` turns this off.

Substations and feeder heads (the outage hierarchy traces feeders from the first device
below a source):

- Switchgear of a source's substation bus work (buses reachable from the source through
  closed switching devices and power transformers only) that lies *above* a breaker — the
  HV bay, the transformer's main breaker, bus disconnectors — is merged into the source's
  busbar, so each source feeds its lowest (feeder-bay) breakers directly. A trip up there
  is a whole-substation outage, i.e. the source itself; the merged ids are kept in the
  source's attributes (``substation_devices``).
- A source with no breaker in its bus work (a SMART-DS feeder ``Circuit`` imported on its
  own is a fragment starting at the feeder head) gets a derived feeder breaker
  ``breaker@<source id>`` between the source and its bus, as every real feeder bay has one.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

from gridmend.topology.elements import SWITCHING_KINDS, CustomerClass, Kind
from gridmend.topology.grid import Grid, GridBuilder, GridValidationError
from gridmend.topology.opendss_script import (
    DssObject,
    DssScript,
    bus_name,
    find_master,
    is_yes,
    read_script,
)

LV_KV = 1.0
COMMERCIAL_KW = 100.0

#: Length units of OpenDSS → metres.
UNIT_METRES: dict[str, float] = {
    "mi": 1609.344,
    "kft": 304.8,
    "km": 1000.0,
    "m": 1.0,
    "meter": 1.0,
    "ft": 0.3048,
    "in": 0.0254,
    "cm": 0.01,
    "mm": 0.001,
}

#: Switch name / linecode prefixes → kind, checked in order (``goab_disswitch`` is an LBS).
_SWITCH_PREFIXES: tuple[tuple[str, Kind], ...] = (
    ("breaker", Kind.BREAKER),
    ("goab", Kind.LOAD_BREAK_SWITCH),
    ("padswitch", Kind.LOAD_BREAK_SWITCH),
    ("elbswitch", Kind.LOAD_BREAK_SWITCH),
    ("lbs", Kind.LOAD_BREAK_SWITCH),
    ("loadbreak", Kind.LOAD_BREAK_SWITCH),
    ("disswitch", Kind.DISCONNECTOR),
    ("disconnect", Kind.DISCONNECTOR),
)
_PROTECTION_CLASSES = {"fuse": Kind.FUSE, "recloser": Kind.RECLOSER, "relay": Kind.BREAKER}


@dataclass
class _Branch:
    element_id: str
    kind: Kind
    a: str
    b: str
    where: str
    normally_open: bool = False
    length_m: float | None = None
    attributes: dict[str, object] = field(default_factory=dict)


@dataclass
class _Point:
    element_id: str
    bus: str
    where: str
    customer_class: CustomerClass | None = None  # None: a source


def read_opendss(path: str | Path, name: str | None = None, *, repair_cutouts: bool = True) -> Grid:
    """Import an OpenDSS ``Master.dss`` (or a folder holding one) and what it redirects to.

    ``repair_cutouts=False`` keeps SMART-DS's missing lateral cutouts missing, so the
    islands behind them fail the trace instead of being bridged by derived fuses.
    """
    path = Path(path)
    try:
        master = find_master(path)
    except FileNotFoundError as err:
        raise GridValidationError([str(err)], str(path)) from err
    script = read_script(master)
    grid_name = name or (master.parent.name if master.stem.lower() == "master" else master.stem)
    return grid_from_script(script, grid_name, source=str(master), repair_cutouts=repair_cutouts)


def grid_from_script(
    script: DssScript, name: str, source: str = "opendss", *, repair_cutouts: bool = True
) -> Grid:
    """Map parsed OpenDSS objects to a grid; every problem names its file and line."""
    problems = list(script.problems)
    branches, points = _classify(script, problems)
    if repair_cutouts:
        branches += _missing_cutouts(branches, points)
    where = {e.element_id: e.where for e in [*branches, *points]}
    coordinates = dict(script.coordinates)
    for br in branches:
        # Switches are point devices: a far end without coordinates (SMART-DS "…x" tie ends
        # toward feeders outside the data set) sits where the switch is.
        if br.kind in SWITCHING_KINDS:
            if br.a in coordinates:
                coordinates.setdefault(br.b, coordinates[br.a])
            elif br.b in coordinates:
                coordinates[br.a] = coordinates[br.b]
    for element in [*branches, *points]:
        buses = (element.a, element.b) if isinstance(element, _Branch) else (element.bus,)
        for bus in buses:
            if bus not in coordinates:
                problems.append(
                    f"{element.where}: {element.element_id}: unknown bus {bus!r} "
                    "(not in any Long_lat_buscoords.txt / LatLongCoords file)"
                )
        if isinstance(element, _Branch) and element.a == element.b:
            problems.append(
                f"{element.where}: {element.element_id}: both ends on bus {element.a!r}"
            )
    if problems:
        raise GridValidationError(problems, source)

    merged = _merge_substation_switchgear(branches, points)
    branches = [b for b in branches if b.element_id not in merged.devices]
    builder = GridBuilder(name)
    added: set[str] = set()

    def bus(bus_id: str) -> str:
        """Add a bus on first use (after merging) and return its id."""
        bus_id = merged.bus.get(bus_id, bus_id)
        if bus_id not in added:
            added.add(bus_id)
            lon, lat = coordinates[bus_id]
            builder.add_bus(bus_id, lon, lat)
        return bus_id

    for p in points:
        if p.customer_class is not None:
            continue
        at = bus(p.bus)
        if p.element_id in merged.unprotected:
            # A feeder fragment: the source sits behind a derived feeder breaker.
            inner = f"{at}@{p.element_id}"
            lon, lat = coordinates[at]
            builder.add_bus(inner, lon, lat)
            builder.add_branch(f"breaker@{p.element_id}", Kind.BREAKER, inner, at, lon=lon, lat=lat)
            at = inner
        i = builder.add_source(p.element_id, at)
        if p.element_id in merged.by_source:
            builder.attributes[i] = {"substation_devices": merged.by_source[p.element_id]}
    for br in branches:
        a, b = bus(br.a), bus(br.b)
        point = None
        if br.kind != Kind.LINE:
            point = coordinates[b if br.kind == Kind.TRANSFORMER else a]
        builder.add_branch(
            br.element_id,
            br.kind,
            a,
            b,
            normally_open=br.normally_open,
            length_m=br.length_m,
            lon=point[0] if point else None,
            lat=point[1] if point else None,
            attributes=br.attributes or None,
        )
    for p in points:
        if p.customer_class is not None:
            builder.add_meter(p.element_id, bus(p.bus), customer_class=p.customer_class)
    try:
        return builder.build()
    except GridValidationError as err:
        located = [_locate(problem, where) for problem in err.problems]
        raise GridValidationError(located, source) from None


def _locate(problem: str, where: dict[str, str]) -> str:
    """Prefix a builder problem ("<element id>: …") with the element's file:line."""
    element_id = problem.split(": ", 1)[0]
    return f"{where[element_id]}: {problem}" if element_id in where else problem


def _classify(script: DssScript, problems: list[str]) -> tuple[list[_Branch], list[_Point]]:
    """Turn OpenDSS objects into gridmend branches, sources and meters."""
    protected: dict[tuple[str, str], tuple[Kind, DssObject]] = {}
    for device in script.of_class(*_PROTECTION_CLASSES):
        target = device.get("switchedobj") or device.get("monitoredobj")
        cls, dot, obj_name = (target or "").partition(".")
        ref = (cls.lower(), obj_name.lower())
        if not dot or ref not in script.objects:
            problems.append(
                f"{device.where}: {device.element_id} acts on unknown element {target!r}"
            )
            continue
        protected[ref] = (_PROTECTION_CLASSES[device.cls], device)
    linecodes = {o.name.lower(): o for o in script.of_class("linecode")}

    branches: list[_Branch] = []
    points: list[_Point] = []
    for obj in script.objects.values():
        try:
            if obj.cls in ("circuit", "vsource"):
                points.append(
                    _Point(obj.element_id, bus_name(obj.get("bus1", "sourcebus")), obj.where)
                )
            elif obj.cls == "line":
                ref = (obj.cls, obj.name.lower())
                branches.append(
                    _line(obj, protected.get(ref), linecodes, script.switch_state.get(ref))
                )
            elif obj.cls == "transformer":
                branches.append(_transformer(obj))
            elif obj.cls == "load":
                points.append(_meter(obj))
        except ValueError as err:
            problems.append(f"{obj.where}: {obj.element_id}: {err}")
    return branches, points


def _number(obj: DssObject, key: str, default: float | None = None) -> float | None:
    value = obj.get(key)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{key}={value!r} is not a number") from None


def _line(
    obj: DssObject,
    protection: tuple[Kind, DssObject] | None,
    linecodes: dict[str, DssObject],
    switched: bool | None,
) -> _Branch:
    name = obj.name.lower()
    linecode_name = (obj.get("linecode") or "").lower()
    labels = (name, linecode_name)
    attributes: dict[str, object] = {}
    if protection is not None:
        kind = protection[0]
        rating = protection[1].get("ratedcurrent")
        if rating:
            attributes["rated_current_a"] = float(rating)
    elif any(label.startswith("fuse") for label in labels):
        kind = Kind.FUSE
    elif any(label.startswith("recloser") for label in labels):
        kind = Kind.RECLOSER
    elif is_yes(obj.get("switch"), False):
        kind = _switch_kind(labels)
    else:
        kind = Kind.LINE
    a, b = obj.get("bus1"), obj.get("bus2")
    if not a or not b:
        raise ValueError("a line needs bus1 and bus2")
    length_m = None
    if kind == Kind.LINE:
        length = _number(obj, "length", 1.0)
        units = obj.get("units") or (
            linecodes[linecode_name].get("units") if linecode_name in linecodes else None
        )
        factor = UNIT_METRES.get((units or "none").lower())
        length_m = None if factor is None or length is None else length * factor
    normally_open = not is_yes(obj.get("enabled"), True) or switched is False
    return _Branch(
        obj.element_id,
        kind,
        bus_name(a),
        bus_name(b),
        obj.where,
        normally_open=normally_open,
        length_m=length_m,
        attributes=attributes,
    )


def _switch_kind(labels: tuple[str, str]) -> Kind:
    for label in labels:
        for prefix, kind in _SWITCH_PREFIXES:
            if label.startswith(prefix) or (prefix == "breaker" and "breaker" in label):
                return kind
    return Kind.DISCONNECTOR


def _transformer(obj: DssObject) -> _Branch:
    """Windings are set one after another (``wdg=N`` then ``bus``/``kV``/``kVA``) or as arrays."""
    n = int(_number(obj, "windings", 2) or 2)
    buses: list[str | None] = [None] * n
    kvs: list[float | None] = [None] * n
    kvas: list[float | None] = [None] * n
    active = 0
    for key, value in obj.params:
        if key == "wdg":
            active = int(float(value)) - 1
            if not 0 <= active < n:
                raise ValueError(f"wdg={value} but the transformer has {n} windings")
        elif key == "bus":
            buses[active] = bus_name(value)
        elif key == "kv":
            kvs[active] = float(value)
        elif key == "kva":
            kvas[active] = float(value)
        elif key in ("buses", "kvs", "kvas"):
            values = re.split(r"[\s,]+", value.strip())
            for w, item in enumerate(values[:n]):
                if key == "buses":
                    buses[w] = bus_name(item)
                elif key == "kvs":
                    kvs[w] = float(item)
                else:
                    kvas[w] = float(item)
    if any(b is None for b in buses):
        raise ValueError("every winding needs a bus")
    primary, secondary = str(buses[0]), str(buses[1])
    if len(set(buses[1:])) > 1:
        raise ValueError("windings 2.. on different buses (a true 3-winding transformer)")
    secondary_kv = [kv for kv in kvs[1:] if kv is not None]
    kind = Kind.TRANSFORMER
    if secondary_kv and min(secondary_kv) > LV_KV:
        kind = Kind.POWER_TRANSFORMER
    attributes: dict[str, object] = {}
    if kvas[0] is not None:
        attributes["rated_kva"] = kvas[0]
    return _Branch(obj.element_id, kind, primary, secondary, obj.where, attributes=attributes)


def _meter(obj: DssObject) -> _Point:
    bus = obj.get("bus1")
    if not bus:
        raise ValueError("a load needs bus1")
    kv = _number(obj, "kv", 0.0) or 0.0
    kw = _number(obj, "kw", 0.0) or 0.0
    phases = int(_number(obj, "phases", 3) or 3)
    if kv > LV_KV:
        customer_class = CustomerClass.INDUSTRIAL
    elif phases >= 3 or kw >= COMMERCIAL_KW:
        customer_class = CustomerClass.COMMERCIAL
    else:
        customer_class = CustomerClass.RESIDENTIAL
    return _Point(obj.element_id, bus_name(bus), obj.where, customer_class)


_CONNECTION_BUS = re.compile(r"(.+?)-(.+?)x+")


def _missing_cutouts(branches: list[_Branch], points: list[_Point]) -> list[_Branch]:
    """Derived fuses for connections whose first element is missing (see module docstring)."""
    parent: dict[str, str] = {}
    degree: dict[str, int] = defaultdict(int)
    first_seen: dict[str, str] = {}
    for br in branches:
        _union(parent, br.a, br.b)
        for bus in (br.a, br.b):
            degree[bus] += 1
            first_seen.setdefault(bus, br.where)
    sourced = {_find(parent, p.bus) for p in points if p.customer_class is None}
    derived: list[_Branch] = []
    for bus, count in degree.items():
        match = _CONNECTION_BUS.fullmatch(bus) if count == 1 else None
        if match is None:
            continue
        here = _find(parent, bus)
        candidates = [
            end
            for end in match.groups()
            if end in degree
            and _find(parent, end) != here
            and not (here in sourced and _find(parent, end) in sourced)
        ]
        if len(candidates) != 1:
            continue
        end = candidates[0]
        joined_sourced = here in sourced or _find(parent, end) in sourced
        _union(parent, end, bus)
        if joined_sourced:
            sourced.add(_find(parent, bus))
        derived.append(
            _Branch(
                f"fuse@{bus}",
                Kind.FUSE,
                end,
                bus,
                first_seen[bus],
                attributes={"derived": f"missing cutout between {end!r} and {bus!r}"},
            )
        )
    return derived


@dataclass
class _Merge:
    bus: dict[str, str] = field(default_factory=dict)  # bus → busbar it is merged into
    devices: set[str] = field(default_factory=set)
    by_source: dict[str, list[str]] = field(default_factory=dict)
    unprotected: set[str] = field(default_factory=set)  # sources that get a derived breaker


def _merge_substation_switchgear(branches: list[_Branch], points: list[_Point]) -> _Merge:
    """Find the switchgear above each source's feeder-bay breakers (see module docstring)."""
    station_kinds = SWITCHING_KINDS | {Kind.POWER_TRANSFORMER}
    adjacent: dict[str, list[tuple[_Branch, str]]] = defaultdict(list)
    for br in branches:
        if br.kind in station_kinds and not br.normally_open:
            adjacent[br.a].append((br, br.b))
            adjacent[br.b].append((br, br.a))
    merge = _Merge()
    parent: dict[str, str] = {}  # bus → union-find parent
    for source in (p for p in points if p.customer_class is None):
        up: dict[str, tuple[_Branch, str] | None] = {source.bus: None}
        queue = deque([source.bus])
        breakers: list[tuple[_Branch, str]] = []
        while queue:
            here = queue.popleft()
            for br, there in adjacent[here]:
                if there in up:
                    continue
                up[there] = (br, here)
                queue.append(there)
                if br.kind == Kind.BREAKER:
                    breakers.append((br, here))
        if not breakers:
            merge.unprotected.add(source.element_id)
            continue
        above: list[_Branch] = []
        for _, start in breakers:
            step = up[start]
            while step is not None:
                br, upper = step
                if br.kind != Kind.POWER_TRANSFORMER and br.element_id not in merge.devices:
                    merge.devices.add(br.element_id)
                    above.append(br)
                    _union(parent, upper, br.b if upper == br.a else br.a)
                step = up[upper]
        if above:
            merge.by_source[source.element_id] = [br.element_id for br in above]
    # Each merged group is named after its member nearest to a source (BFS order above).
    for bus in list(parent):
        merge.bus[bus] = _find(parent, bus)
    return merge


def _union(parent: dict[str, str], upper: str, lower: str) -> None:
    """Merge ``lower``'s group into ``upper``'s, so groups keep their source-side name."""
    ra, rb = _find(parent, upper), _find(parent, lower)
    if ra != rb:
        parent[rb] = ra


def _find(parent: dict[str, str], bus: str) -> str:
    parent.setdefault(bus, bus)
    while parent[bus] != bus:
        parent[bus] = parent[parent[bus]]
        bus = parent[bus]
    return bus
