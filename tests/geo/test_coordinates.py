"""GPS fixes from Chinese map SDKs convert to WGS-84; local metric projections are exact."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from gridmend.geo.coordinates import (
    LocalProjector,
    from_wgs84,
    haversine_m,
    to_wgs84,
    utm_crs_for,
)


def test_known_gcj02_offset_of_tiananmen_matches_published_value():
    # Published pair (eviltransform / coordtransform test data): WGS-84 → GCJ-02.
    lon, lat = from_wgs84(116.391349, 39.907375, "gcj02")
    assert lon == pytest.approx(116.397586, abs=2e-5)
    assert lat == pytest.approx(39.908777, abs=2e-5)


def test_gcj02_offset_is_hundreds_of_metres_in_china_and_zero_outside():
    lon, lat = from_wgs84(121.4737, 31.2304, "gcj02")  # Shanghai
    assert 100 < haversine_m(121.4737, 31.2304, lon, lat) < 1000
    assert from_wgs84(24.94, 60.17, "gcj02") == (24.94, 60.17)  # Helsinki: untouched


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_round_trip_through_chinese_systems_is_accurate_to_a_millimetre(crs):
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.0, 135.0, 20_000)
    lat = rng.uniform(18.0, 53.0, 20_000)
    shifted = from_wgs84(lon, lat, crs)
    back_lon, back_lat = to_wgs84(*shifted, crs)
    assert haversine_m(lon, lat, back_lon, back_lat).max() < 1e-3
    # and the shift itself is real, so the test can fail
    assert haversine_m(lon, lat, *shifted).min() > 1.0


def test_bd09_is_gcj02_plus_baidu_offset():
    glon, glat = from_wgs84(113.2644, 23.1291, "gcj02")
    blon, blat = from_wgs84(113.2644, 23.1291, "bd09")
    assert 500 < haversine_m(glon, glat, blon, blat) < 1500


def test_scalars_in_give_floats_out_and_arrays_give_arrays():
    lon, lat = to_wgs84(116.4, 39.9, "bd09")
    assert isinstance(lon, float) and isinstance(lat, float)
    lons, lats = to_wgs84(np.array([116.4, 121.5]), np.array([39.9, 31.2]), "BD-09")
    assert lons.shape == (2,) and lats.shape == (2,)


def test_unknown_coordinate_system_is_named_in_the_error():
    with pytest.raises(ValueError, match="osgb36"):
        to_wgs84(0.0, 51.0, "osgb36")


def test_utm_zone_for_helsinki_offenburg_and_southern_hemisphere():
    assert utm_crs_for(24.94, 60.17).to_epsg() == 32635
    assert utm_crs_for(7.94, 48.47).to_epsg() == 32632
    assert utm_crs_for(151.2, -33.9).to_epsg() == 32756


def test_local_projector_measures_true_metres_and_inverts():
    proj = LocalProjector(24.94, 60.17)
    lon = np.array([24.90, 24.95, 24.99])
    lat = np.array([60.15, 60.17, 60.19])
    x, y = proj.forward(lon, lat)
    back_lon, back_lat = proj.inverse(x, y)
    assert np.allclose(back_lon, lon, atol=1e-9) and np.allclose(back_lat, lat, atol=1e-9)
    planar = np.hypot(x[2] - x[0], y[2] - y[0])
    _, _, geodesic = Geod(ellps="WGS84").inv(lon[0], lat[0], lon[2], lat[2])
    assert planar == pytest.approx(geodesic, rel=1e-3)  # UTM scale error stays below 0.1 %
