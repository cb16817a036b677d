"""Where a report comes from: its meter, or its transformer area when the fix is ambiguous.

By id first (meter element id or customer id); else the nearest service point to the GPS
fix (converted from GCJ-02/BD-09 on intake) within a radius. When several meters are
equally close the report resolves to their transformer area instead of a guessed meter.
Unknown ids, fixes outside the service area and devices named by customers are refused
with a reason. Batches resolve their GPS fixes vectorised, one KD-tree query per CRS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridmend.dispatch.reports import Channel, Report
from gridmend.geo.coordinates import haversine_m
from gridmend.geo.spatial_index import ServicePointIndex
from gridmend.topology.network import Topology

#: A GPS fix this much farther from the named meter than the radius overrides the id
#: (callers misread meter numbers; phones rarely lie by kilometres).
ID_GPS_CONFLICT_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class Resolution:
    """``meter`` ≥ 0 for a meter; else ``area`` ≥ 0 (transformer area) or ``device`` ≥ 0.

    For an ambiguous fix ``nearest`` keeps the nearest meter: not claimed as the caller's,
    but it places the report on the right LV cable of the area.
    """

    meter: int = -1
    area: int = -1
    nearest: int = -1
    device: int = -1
    reason: str | None = None  # set when rejected
    via: str = "id"  # "id", "gps", "gps-ambiguous"
    distance_m: float = 0.0

    @property
    def rejected(self) -> bool:
        return self.reason is not None


class Resolver:
    """Resolves reports against one topology (builds the service-point index lazily)."""

    def __init__(self, topology: Topology, gps_radius_m: float = 150.0) -> None:
        self.topology = topology
        self.gps_radius_m = gps_radius_m
        grid = topology.grid
        self._meters = topology.meters
        self._by_customer = {
            cid: m for m, cid in grid.customer_id.items() if cid != grid.element_ids[m]
        }
        self._index: ServicePointIndex | None = None

    @property
    def index(self) -> ServicePointIndex:
        if self._index is None:
            grid = self.topology.grid
            self._index = ServicePointIndex(
                self._meters, grid.lon[self._meters], grid.lat[self._meters]
            )
        return self._index

    # ------------------------------------------------------------------ by id
    def _by_id(self, report: Report) -> Resolution | None:
        """Resolution from the id, None when the id is unknown."""
        key = report.meter_id
        if key is None:
            return None
        topology = self.topology
        element = topology.grid.index.get(key)
        if element is None:
            meter = self._by_customer.get(key)
            return None if meter is None else Resolution(meter=meter)
        if topology.is_meter(element):
            return Resolution(meter=element)
        if report.channel in (Channel.SCADA_TRIP, Channel.CREW) and topology.is_hierarchy(element):
            return Resolution(device=element)
        return Resolution(reason=f"meter_id: {key!r} is a {topology.kind(element)}, not a meter")

    def _from_match(self, position: int, distance: float, ambiguous: bool) -> Resolution:
        if position < 0:
            return Resolution(
                reason=f"lon/lat: no service point within {self.gps_radius_m:.0f} m "
                "(outside the service area)"
            )
        meter = int(self._meters[position])
        if ambiguous:
            transformer = self.topology.transformer_of(meter)
            area = transformer if transformer >= 0 else int(self.topology.meter_node[meter])
            return Resolution(area=area, nearest=meter, via="gps-ambiguous", distance_m=distance)
        return Resolution(meter=meter, via="gps", distance_m=distance)

    def _combine(self, report: Report, by_id: Resolution | None, gps: Resolution | None):
        if by_id is not None and by_id.meter >= 0 and gps is not None and gps.meter >= 0:
            grid = self.topology.grid
            named = by_id.meter
            far = float(
                haversine_m(
                    grid.lon[named], grid.lat[named], grid.lon[gps.meter], grid.lat[gps.meter]
                )
            )
            if far > ID_GPS_CONFLICT_FACTOR * self.gps_radius_m:
                return gps
            return by_id
        if by_id is not None:
            return by_id
        if gps is not None:
            if gps.rejected and report.meter_id:
                return Resolution(reason=f"meter_id: unknown id {report.meter_id!r}; {gps.reason}")
            return gps
        return Resolution(reason=f"meter_id: unknown meter or customer id {report.meter_id!r}")

    # ------------------------------------------------------------------ public
    def resolve(self, report: Report) -> Resolution:
        by_id = self._by_id(report)
        if by_id is not None and (by_id.rejected or by_id.device >= 0):
            return by_id
        gps = None
        if report.has_fix:
            match = self.index.nearest(report.lon, report.lat, self.gps_radius_m, crs=report.crs)
            gps = (
                self._from_match(-1, np.inf, False)
                if match is None
                else self._from_match(match.index, match.distance_m, match.ambiguous)
            )
        return self._combine(report, by_id, gps)

    def resolve_many(self, reports: Sequence[Report]) -> list[Resolution]:
        """Resolve a batch; GPS fixes go through one vectorised query per CRS."""
        by_id = [self._by_id(r) for r in reports]
        gps: list[Resolution | None] = [None] * len(reports)
        groups: dict[str, list[int]] = {}
        for k, r in enumerate(reports):
            b = by_id[k]
            if r.has_fix and not (b is not None and (b.rejected or b.device >= 0)):
                groups.setdefault(r.crs, []).append(k)
        for crs, members in groups.items():
            lon = np.array([reports[k].lon for k in members], dtype=np.float64)
            lat = np.array([reports[k].lat for k in members], dtype=np.float64)
            matches = self.index.nearest_many(lon, lat, self.gps_radius_m, crs=crs)
            for j, k in enumerate(members):
                gps[k] = self._from_match(
                    int(matches.index[j]), float(matches.distance_m[j]), bool(matches.ambiguous[j])
                )
        out = []
        for k, r in enumerate(reports):
            b = by_id[k]
            if b is not None and (b.rejected or b.device >= 0):
                out.append(b)
            else:
                out.append(self._combine(r, b, gps[k]))
        return out
