"""Small worlds for the crew-dispatch tests: a river town, a synthetic grid, crews."""

from __future__ import annotations

import math

import numpy as np

from gridmend.dispatch.crews import Crew, ShiftWindow, Skill
from gridmend.dispatch.fault_view import FaultView
from gridmend.geo.road_graph import RoadGraph, build_road_graph
from gridmend.topology.elements import Kind, ServiceClass

T0 = 1_750_000_000.0  # a fixed simulated clock (epoch seconds)
ORIGIN = (24.90, 60.20)  # river town, lon/lat of the local (0, 0)
_M_PER_DEG_LAT = 111_320.0


def at(x_m: float, y_m: float) -> tuple[float, float]:
    """lon/lat of a point x metres east and y metres north of the river town's origin."""
    lon = ORIGIN[0] + x_m / (_M_PER_DEG_LAT * math.cos(math.radians(ORIGIN[1])))
    return lon, ORIGIN[1] + y_m / _M_PER_DEG_LAT


def river_town() -> RoadGraph:
    """Two riverside roads 300 m apart (river between) joined by one bridge 5.5 km east."""
    xs = np.arange(-3000.0, 6001.0, 250.0)
    north = [at(x, 150.0) for x in xs]
    south = [at(x, -150.0) for x in xs]
    pts = np.array(north + south)
    n = len(xs)
    tails, heads = [], []
    for bank in (0, n):
        for i in range(n - 1):
            tails += [bank + i, bank + i + 1]
            heads += [bank + i + 1, bank + i]
    bridge = int(np.flatnonzero(xs == 5500.0)[0])
    tails += [bridge, n + bridge]
    heads += [n + bridge, bridge]
    tails, heads = np.array(tails), np.array(heads)
    length = np.hypot(*(np.array([pts[tails, 0] - pts[heads, 0], pts[tails, 1] - pts[heads, 1]])))
    length_m = length * _M_PER_DEG_LAT * 0.75  # rough; only relative times matter here
    return build_road_graph(
        "river-town", pts[:, 0], pts[:, 1], tails, heads, length_m, np.full(tails.size, 40.0)
    )


def crew(
    crew_id: str,
    where: tuple[float, float],
    skills: str = "mv lv",
    shift: ShiftWindow | None = None,
) -> Crew:
    return Crew(
        crew_id=crew_id,
        staff_number=f"No.{crew_id[-3:]}",
        skills=frozenset(Skill(s) for s in skills.split()),
        depot=where,
        shift=shift or ShiftWindow.always(),
    )


def fault(
    fault_id: str,
    where: tuple[float, float],
    *,
    kind: Kind = Kind.FUSE,
    customers: int = 50,
    critical: int = 0,
    reported: float = T0,
    service_class: ServiceClass = ServiceClass.URBAN,
    device: int = -1,
    skills: frozenset[Skill] | None = frozenset({Skill.MV}),
) -> FaultView:
    return FaultView(
        fault_id=fault_id,
        device=device,
        location=where,
        device_kind=kind,
        customers=customers,
        critical=critical,
        first_report_time=reported,
        service_class=service_class,
        required_skills=skills,
    )
