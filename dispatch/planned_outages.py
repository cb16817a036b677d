"""Announced planned outages: reports from inside one are answered from the announcement.

An announcement names devices (everything below them is off) or an area polygon (every
meter inside), plus its window. Look-up per report is O(chain length): device
announcements are found on the meter's hierarchy chain, area announcements by a meter set
computed once when announced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import shapely

from gridmend.geo.spatial_index import points_in_polygon
from gridmend.topology.network import Topology


@dataclass(frozen=True, slots=True)
class PlannedOutage:
    planned_id: str
    start: float  # epoch seconds
    end: float
    device_ids: tuple[str, ...] = ()
    area: shapely.Geometry | None = None
    reason: str = ""


@dataclass
class PlannedOutageBook:
    """All announcements; answers "is this meter inside a planned outage at time t"."""

    topology: Topology
    outages: dict[str, PlannedOutage] = field(default_factory=dict)
    _by_node: dict[int, list[PlannedOutage]] = field(default_factory=dict)
    _by_meter: dict[int, list[PlannedOutage]] = field(default_factory=dict)

    def announce(self, outage: PlannedOutage) -> int:
        """Register an announcement; returns the number of customers it covers.

        ValueError names an unknown device id or an empty/invalid announcement.
        """
        if outage.end <= outage.start:
            raise ValueError(f"{outage.planned_id}: end is not after start")
        if not outage.device_ids and outage.area is None:
            raise ValueError(f"{outage.planned_id}: names neither devices nor an area")
        grid = self.topology.grid
        nodes = []
        for device_id in outage.device_ids:
            if device_id not in grid.index:
                raise ValueError(f"{outage.planned_id}: unknown device {device_id!r}")
            nodes.append(grid.index[device_id])
        covered: set[int] = set()
        for node in nodes:
            self._by_node.setdefault(node, []).append(outage)
            covered.update(self.topology.meters_below(node).tolist())
        if outage.area is not None:
            meters = self.topology.meters
            inside = points_in_polygon(outage.area, grid.lon[meters], grid.lat[meters])
            for m in meters[inside].tolist():
                self._by_meter.setdefault(m, []).append(outage)
                covered.add(m)
        self.outages[outage.planned_id] = outage
        return len(covered)

    def covering(self, meter: int, chain: tuple[int, ...], time: float) -> PlannedOutage | None:
        """The announcement covering a meter at a time, if any."""
        for outage in self._by_meter.get(meter, ()):
            if outage.start <= time <= outage.end:
                return outage
        if self._by_node:
            for node in chain:
                for outage in self._by_node.get(node, ()):
                    if outage.start <= time <= outage.end:
                        return outage
        return None

    def covering_area(self, chain: tuple[int, ...], time: float) -> PlannedOutage | None:
        """For reports resolved only to a transformer area (device announcements only)."""
        return self.covering(-1, chain, time)
