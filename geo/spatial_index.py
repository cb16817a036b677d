"""Spatial indexes behind GPS intake and the map.

- :class:`ServicePointIndex`: nearest service point (meter) to a GPS fix, in true metres,
  with a distance limit and an ambiguity flag (a fix between two houses must not be
  silently pinned to one of them).
- :class:`BBoxIndex`: which map features intersect a viewport (shapely STRtree).
- :class:`AreaIndex` / :func:`points_in_polygon`: which points fall inside planned-outage
  areas or storm footprints (shapely 2 vectorised predicates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from scipy.spatial import cKDTree

from gridmend.geo.coordinates import LocalProjector, normalise_crs, to_wgs84

if TYPE_CHECKING:
    from gridmend.topology.grid import Grid

#: Two service points are "equally close" when their distances differ by less than this …
AMBIGUITY_ABS_M = 2.0
#: … or by less than this share of the distance to the nearest one.
AMBIGUITY_REL = 0.10
_CANDIDATES_K = 8


@dataclass(frozen=True)
class Match:
    """The service point nearest a fix.

    ``ambiguous`` is True when other points are (nearly) as close — ``candidates`` then lists
    all of them (positions into the index, nearest first) so that a dispatcher can ask.
    """

    index: int
    id: object
    distance_m: float
    ambiguous: bool
    candidates: tuple[int, ...]


@dataclass(frozen=True)
class Matches:
    """Vectorised result of :meth:`ServicePointIndex.nearest_many` (index -1 = no match)."""

    index: np.ndarray  # int64 positions, -1 where nothing lies within the limit
    distance_m: np.ndarray  # float64, inf where no match
    ambiguous: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.index)


class ServicePointIndex:
    """Nearest-service-point lookup over a KD-tree in local metric coordinates."""

    def __init__(
        self,
        ids: Sequence[object] | np.ndarray,
        lon: np.ndarray | Sequence[float],
        lat: np.ndarray | Sequence[float],
        *,
        projector: LocalProjector | None = None,
        service_radius_m: float = 250.0,
    ) -> None:
        lon = np.asarray(lon, dtype=np.float64).ravel()
        lat = np.asarray(lat, dtype=np.float64).ravel()
        if lon.shape != lat.shape:
            raise ValueError(f"lon and lat differ in length: {lon.size} vs {lat.size}")
        if len(ids) != lon.size:
            raise ValueError(f"{len(ids)} ids for {lon.size} service points")
        bad = ~(np.isfinite(lon) & np.isfinite(lat))
        if bad.any():
            first = ids[int(np.flatnonzero(bad)[0])]
            raise ValueError(
                f"{int(bad.sum())} service point(s) without coordinates, first: {first!r}"
            )
        if lon.size == 0:
            raise ValueError("no service points to index")
        self.ids = ids
        self.lon, self.lat = lon, lat
        self.projector = projector or LocalProjector.for_points(lon, lat)
        self.xy = self.projector.xy(lon, lat)
        self.tree = cKDTree(self.xy, balanced_tree=False, compact_nodes=False)
        self.service_radius_m = float(service_radius_m)
        #: Grid element index per position when built by :meth:`for_meters`.
        self.meters: np.ndarray | None = None

    def __len__(self) -> int:
        return self.lon.size

    @classmethod
    def for_meters(cls, grid: Grid, **options: object) -> ServicePointIndex:
        """Index a grid's meters; ``ids`` are meter element ids, positions index ``meters``.

        ``index.meters[match.index]`` is the meter's element index in the grid.
        """
        from gridmend.topology.elements import Kind

        meters = grid.indices_of(Kind.METER)
        ids = [grid.element_ids[m] for m in meters]
        index = cls(ids, grid.lon[meters], grid.lat[meters], **options)  # type: ignore[arg-type]
        index.meters = meters
        return index

    def _project(self, lon, lat, crs: str) -> np.ndarray:
        if normalise_crs(crs) != "wgs84":
            lon, lat = to_wgs84(lon, lat, crs)
        return self.projector.xy(np.atleast_1d(lon), np.atleast_1d(lat))

    def nearest(
        self,
        lon: float,
        lat: float,
        max_distance_m: float = np.inf,
        *,
        crs: str = "wgs84",
    ) -> Match | None:
        """Nearest service point to one fix, or None when none lies within the limit."""
        q = self._project(lon, lat, crs)[0]
        k = min(_CANDIDATES_K, len(self))
        d, i = self.tree.query(q, k=k, distance_upper_bound=max_distance_m)
        d, i = np.atleast_1d(d), np.atleast_1d(i)
        found = np.isfinite(d)
        if not found.any():
            return None
        d, i = d[found], i[found]
        tol = max(AMBIGUITY_ABS_M, AMBIGUITY_REL * float(d[0]))
        close = d <= d[0] + tol
        if close.all() and d.size == k and k < len(self):  # e.g. a block of flats: get all
            i = self.within(lon, lat, float(d[0] + tol), crs=crs)
            close = np.ones(i.size, bool)
        candidates = tuple(int(x) for x in i[close])
        best = int(i[0])
        return Match(
            index=best,
            id=self.ids[best],
            distance_m=float(d[0]),
            ambiguous=len(candidates) > 1,
            candidates=candidates,
        )

    def nearest_many(
        self,
        lon: np.ndarray | Sequence[float],
        lat: np.ndarray | Sequence[float],
        max_distance_m: float = np.inf,
        *,
        crs: str = "wgs84",
        workers: int = 1,
    ) -> Matches:
        """Nearest service point for each of many fixes (vectorised; -1 beyond the limit)."""
        q = self._project(lon, lat, crs)
        k = 2 if len(self) > 1 else 1
        d, i = self.tree.query(q, k=k, distance_upper_bound=max_distance_m, workers=workers)
        if k == 1:
            d, i = d[:, None], i[:, None]
        found = np.isfinite(d[:, 0])
        index = np.where(found, i[:, 0], -1).astype(np.int64)
        tol = np.maximum(AMBIGUITY_ABS_M, AMBIGUITY_REL * d[:, 0])
        ambiguous = found & (d[:, -1] <= d[:, 0] + tol) if k > 1 else np.zeros(len(q), bool)
        return Matches(index=index, distance_m=d[:, 0].copy(), ambiguous=ambiguous)

    def within(self, lon: float, lat: float, radius_m: float, *, crs: str = "wgs84") -> np.ndarray:
        """Positions of all service points within ``radius_m`` of a point, nearest first."""
        q = self._project(lon, lat, crs)[0]
        hits = np.asarray(self.tree.query_ball_point(q, r=radius_m), dtype=np.int64)
        if hits.size:
            hits = hits[np.argsort(np.hypot(*(self.xy[hits] - q).T))]
        return hits

    def contains(
        self,
        lon: float | np.ndarray,
        lat: float | np.ndarray,
        *,
        radius_m: float | None = None,
        crs: str = "wgs84",
    ) -> bool | np.ndarray:
        """Whether a point lies in the service area: within ``radius_m`` of a service point.

        A buffer around the customers follows the real shape of a service territory
        (rivers, forests, neighbouring utilities) better than a convex hull would.
        """
        scalar = np.ndim(lon) == 0
        q = self._project(lon, lat, crs)
        r = self.service_radius_m if radius_m is None else float(radius_m)
        d, _ = self.tree.query(q, k=1, distance_upper_bound=r)
        inside = np.isfinite(d)
        return bool(inside[0]) if scalar else inside


class BBoxIndex:
    """Map features (points, lines, polygons in lon/lat) answering viewport queries."""

    def __init__(self, geometries: Sequence[shapely.Geometry] | np.ndarray) -> None:
        self.geometries = np.asarray(geometries, dtype=object)
        self.tree = shapely.STRtree(self.geometries)

    def __len__(self) -> int:
        return len(self.geometries)

    def query(self, min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> np.ndarray:
        """Positions of features intersecting the box, ascending."""
        if min_lon > max_lon or min_lat > max_lat:
            raise ValueError(
                f"empty bounding box: ({min_lon}, {min_lat}, {max_lon}, {max_lat}) — "
                "expected min_lon ≤ max_lon and min_lat ≤ max_lat"
            )
        box = shapely.box(min_lon, min_lat, max_lon, max_lat)
        return np.sort(self.tree.query(box, predicate="intersects"))

    @classmethod
    def from_points(cls, lon: np.ndarray, lat: np.ndarray) -> BBoxIndex:
        return cls(shapely.points(np.asarray(lon, float), np.asarray(lat, float)))

    @classmethod
    def from_lines(cls, lines: Sequence[np.ndarray]) -> BBoxIndex:
        """One feature per (k, 2) lon/lat polyline (e.g. grid lines or road edges)."""
        return cls(shapely.linestrings(list(lines)) if len(lines) else np.empty(0, object))


def points_in_polygon(
    polygon: shapely.Geometry, lon: np.ndarray | Sequence[float], lat: np.ndarray | Sequence[float]
) -> np.ndarray:
    """Mask of points inside (or on the edge of) one polygon, e.g. a planned-outage area."""
    shapely.prepare(polygon)
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    return shapely.intersects_xy(polygon, x, y)


class AreaIndex:
    """Many polygons (planned-outage areas, storm footprints) against many points."""

    def __init__(self, polygons: Sequence[shapely.Geometry], ids: Sequence[object] | None = None):
        self.polygons = np.asarray(polygons, dtype=object)
        invalid = ~shapely.is_valid(self.polygons)
        if invalid.any():
            k = int(np.flatnonzero(invalid)[0])
            name = ids[k] if ids is not None else k
            raise ValueError(
                f"area {name!r} has an invalid polygon: {shapely.is_valid_reason(self.polygons[k])}"
            )
        self.ids = list(ids) if ids is not None else list(range(len(self.polygons)))
        self.tree = shapely.STRtree(self.polygons)

    def pairs(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(point position, area position) for every point inside every area."""
        pts = shapely.points(np.asarray(lon, float), np.asarray(lat, float))
        point_i, area_i = self.tree.query(pts, predicate="intersects")
        return point_i, area_i

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Mask of points inside at least one area."""
        point_i, _ = self.pairs(lon, lat)
        mask = np.zeros(np.asarray(lon).size, dtype=bool)
        mask[point_i] = True
        return mask

    def area_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Position of the (first) area containing each point, -1 where none does."""
        point_i, area_i = self.pairs(lon, lat)
        out = np.full(np.asarray(lon).size, -1, dtype=np.int64)
        order = np.lexsort((area_i, point_i))[::-1]  # lowest area wins
        out[point_i[order]] = area_i[order]
        return out
