"""Coordinate systems met in the field: WGS-84, GCJ-02 and BD-09, plus local metric UTM.

gridmend works in WGS-84 internally. GPS fixes from Chinese mobile map SDKs (AMap/Tencent
report GCJ-02, Baidu reports BD-09) are offset by up to several hundred metres and must be
converted before they are matched to service points. The PyPI packages for this
(``eviltransform``, ``coord-convert``) are scalar-only and unmaintained, so the published
forward transform is implemented here vectorised, with an iterative inverse accurate to
millimetres. Metric work (nearest-neighbour distances, buffers) uses a local UTM zone via
pyproj.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

#: Coordinate systems accepted on input.
SUPPORTED_CRS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

_CRS_ALIASES = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "mars": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "bd09ll": "bd09",
    "baidu": "bd09",
}

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 obfuscation.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_INVERSE_TOLERANCE_DEG = 1e-10  # ≈ 0.01 mm
_INVERSE_MAX_ITER = 30

ArrayLike = float | np.ndarray | list[float]


def normalise_crs(crs: str) -> str:
    """Canonical name ("wgs84", "gcj02", "bd09") of a coordinate system; ValueError if unknown."""
    key = str(crs).strip().lower().replace("_", "").replace(" ", "")
    if key not in _CRS_ALIASES:
        raise ValueError(
            f"unknown coordinate system {crs!r}: expected one of {', '.join(SUPPORTED_CRS)}"
        )
    return _CRS_ALIASES[key]


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Mask of points inside the rough bounding box where GCJ-02 offsets are applied."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlat = _delta_lat(lon - 105.0, lat - 35.0)
    dlon = _delta_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02_approx(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(forward, lon: np.ndarray, lat: np.ndarray, guess_lon, guess_lat):
    """Fixed-point inverse of a smooth, near-identity forward transform."""
    x, y = guess_lon.copy(), guess_lat.copy()
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        dx, dy = fx - lon, fy - lat
        x -= dx
        y -= dy
        if np.all(np.abs(dx) < _INVERSE_TOLERANCE_DEG) and np.all(
            np.abs(dy) < _INVERSE_TOLERANCE_DEG
        ):
            break
    return x, y


def _gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _invert(_wgs84_to_gcj02, lon, lat, lon, lat)


def _bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    glon, glat = _bd09_to_gcj02_approx(lon, lat)
    return _invert(_gcj02_to_bd09, lon, lat, glon, glat)


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    x = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    y = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    if x.shape != y.shape:
        raise ValueError(f"lon and lat differ in shape: {x.shape} vs {y.shape}")
    return x, y, scalar


def _ret(x: np.ndarray, y: np.ndarray, scalar: bool):
    if scalar:
        return float(x[0]), float(y[0])
    return x, y


@overload
def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]: ...
@overload
def to_wgs84(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]: ...
def to_wgs84(lon, lat, crs: str):
    """Convert lon/lat given in ``crs`` ("wgs84", "gcj02", "bd09") to WGS-84.

    Scalars in → floats out; arrays in → arrays out. Points outside China are left as they
    are for GCJ-02 (the obfuscation is not applied there).
    """
    name = normalise_crs(crs)
    x, y, scalar = _as_arrays(lon, lat)
    if name == "gcj02":
        x, y = _gcj02_to_wgs84(x, y)
    elif name == "bd09":
        x, y = _gcj02_to_wgs84(*_bd09_to_gcj02(x, y))
    else:
        x, y = x.copy(), y.copy()
    return _ret(x, y, scalar)


@overload
def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]: ...
@overload
def from_wgs84(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]: ...
def from_wgs84(lon, lat, crs: str):
    """Convert WGS-84 lon/lat into ``crs`` — for showing points on Chinese base maps."""
    name = normalise_crs(crs)
    x, y, scalar = _as_arrays(lon, lat)
    if name == "gcj02":
        x, y = _wgs84_to_gcj02(x, y)
    elif name == "bd09":
        x, y = _gcj02_to_bd09(*_wgs84_to_gcj02(x, y))
    else:
        x, y = x.copy(), y.copy()
    return _ret(x, y, scalar)


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS-84 UTM zone covering a point (Norway/Svalbard exceptions included)."""
    lon, lat = float(lon), float(lat)
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise ValueError(f"no UTM zone for lon={lon}, lat={lat} (UTM covers 80°S–84°N)")
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon, lat, lon, lat),
    )
    codes = [int(i.code) for i in infos if i.auth_name == "EPSG"]
    codes = [c for c in codes if 32601 <= c <= 32760]
    if not codes:  # fall back to the plain zone formula
        zone = int((lon + 180.0) // 6.0) % 60 + 1
        codes = [(32600 if lat >= 0 else 32700) + zone]
    return CRS.from_epsg(codes[0])


class LocalProjector:
    """Projects lon/lat to metres in a local UTM zone and back.

    Built once per region (from a centre point or from the data's centroid) so that
    distances, buffers and KD-tree queries are in true metres.
    """

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = float(lon0), float(lat0)
        self.crs = utm_crs_for(self.lon0, self.lat0)
        self._fwd = Transformer.from_crs(4326, self.crs, always_xy=True)
        self._inv = Transformer.from_crs(self.crs, 4326, always_xy=True)

    @classmethod
    def for_points(cls, lon: ArrayLike, lat: ArrayLike) -> LocalProjector:
        """A projector centred on the median of the given points."""
        x = np.asarray(lon, dtype=np.float64).ravel()
        y = np.asarray(lat, dtype=np.float64).ravel()
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            raise ValueError("no finite coordinates to centre a local projection on")
        return cls(float(np.median(x[ok])), float(np.median(y[ok])))

    def forward(self, lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """lon/lat (degrees) → easting/northing (metres)."""
        x, y = self._fwd.transform(
            np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        )
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def inverse(self, x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """easting/northing (metres) → lon/lat (degrees)."""
        lon, lat = self._inv.transform(
            np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        )
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    def xy(self, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
        """(n, 2) metric coordinates, the shape KD-trees want."""
        x, y = self.forward(lon, lat)
        return np.column_stack([np.atleast_1d(x), np.atleast_1d(y)])

    def __repr__(self) -> str:
        return f"LocalProjector({self.crs.to_string()}, centre=({self.lon0:.5f}, {self.lat0:.5f}))"


_GEOD_R = 6_371_008.8


def haversine_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Great-circle distance in metres (vectorised); good to ~0.5 % for dispatch purposes."""
    lon1, lat1, lon2, lat2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2)
    )
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _GEOD_R * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
