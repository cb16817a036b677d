"""GPS fixes resolve to service points; map layers and outage areas answer spatial queries."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridmend.fixtures import shared_data
from gridmend.geo.coordinates import LocalProjector, from_wgs84
from gridmend.geo.spatial_index import AreaIndex, BBoxIndex, ServicePointIndex, points_in_polygon


@pytest.fixture(scope="module")
def schutterwald_meters() -> gpd.GeoDataFrame:
    data = shared_data()
    if data is None:
        pytest.skip("shared data not available")
    return gpd.read_file(
        data / "oberrhein" / "oberrhein_schutterwald_pandapower.gpkg", layer="lv_schutterwald_load"
    )


@pytest.fixture(scope="module")
def meter_index(schutterwald_meters) -> ServicePointIndex:
    g = schutterwald_meters
    return ServicePointIndex(list(g["name"]), g.geometry.x.to_numpy(), g.geometry.y.to_numpy())


def test_fix_next_to_a_house_resolves_to_that_meter(meter_index, schutterwald_meters):
    # Real Schutterwald loads; each fix 3 m north of a meter must resolve back to it,
    # unless another meter is as close (then the answer must say it is ambiguous).
    proj = meter_index.projector
    for k in (0, 100, 777, 1500):
        x, y = proj.forward(meter_index.lon[k], meter_index.lat[k])
        lon, lat = proj.inverse(x, y + 3.0)
        m = meter_index.nearest(float(lon), float(lat), max_distance_m=50)
        assert m is not None
        assert m.index == k or (m.ambiguous and k in m.candidates)
        assert m.id == schutterwald_meters["name"].iloc[m.index]


def test_fix_beyond_the_distance_limit_finds_nothing(meter_index):
    assert meter_index.nearest(7.60, 48.30, max_distance_m=500) is None
    many = meter_index.nearest_many([7.60, meter_index.lon[5]], [48.30, meter_index.lat[5]], 500)
    assert many.index[0] == -1 and not np.isfinite(many.distance_m[0])
    assert many.index[1] == 5 or many.ambiguous[1]


def test_fix_halfway_between_two_meters_is_ambiguous():
    proj = LocalProjector(24.94, 60.17)
    x0, y0 = proj.forward(24.94, 60.17)
    lon, lat = proj.inverse(x0 + np.array([0.0, 20.0, 500.0]), y0 + np.zeros(3))
    idx = ServicePointIndex(["a", "b", "c"], lon, lat, projector=proj)
    mid_lon, mid_lat = proj.inverse(x0 + 10.3, y0)
    m = idx.nearest(float(mid_lon), float(mid_lat))
    assert m.ambiguous and set(m.candidates) == {0, 1} and m.id == "b"
    near_lon, near_lat = proj.inverse(x0 + 2.0, y0)
    m = idx.nearest(float(near_lon), float(near_lat))
    assert not m.ambiguous and m.id == "a" and m.distance_m == pytest.approx(2.0, abs=1e-6)
    many = idx.nearest_many(np.array([mid_lon, near_lon]), np.array([mid_lat, near_lat]))
    assert many.ambiguous.tolist() == [True, False]


def test_gcj02_fix_from_a_chinese_app_resolves_to_the_wgs84_meter():
    proj = LocalProjector(116.40, 39.91)
    rng = np.random.default_rng(1)
    x0, y0 = proj.forward(116.40, 39.91)
    x, y = x0 + rng.uniform(-3000, 3000, 2000), y0 + rng.uniform(-3000, 3000, 2000)
    lon, lat = proj.inverse(x, y)
    idx = ServicePointIndex(np.arange(2000), lon, lat, projector=proj)
    for crs in ("gcj02", "bd09"):
        slon, slat = from_wgs84(lon[:200], lat[:200], crs)
        got = idx.nearest_many(slon, slat, 5.0, crs=crs)
        assert (got.index == np.arange(200)).all()
        # and without conversion the shifted fixes would not resolve — the test can fail
        raw = idx.nearest_many(slon, slat, 5.0)
        assert (raw.index != np.arange(200)).mean() > 0.9


def test_service_area_contains_houses_but_not_far_fields(meter_index):
    inside = meter_index.contains(meter_index.lon[:10], meter_index.lat[:10])
    assert inside.all()
    assert meter_index.contains(7.60, 48.30) is False


def test_viewport_returns_only_features_in_the_box(meter_index):
    bbox = BBoxIndex.from_points(meter_index.lon, meter_index.lat)
    lo_lon, hi_lon = np.percentile(meter_index.lon, [25, 75])
    lo_lat, hi_lat = np.percentile(meter_index.lat, [25, 75])
    got = bbox.query(lo_lon, lo_lat, hi_lon, hi_lat)
    expected = np.flatnonzero(
        (meter_index.lon >= lo_lon)
        & (meter_index.lon <= hi_lon)
        & (meter_index.lat >= lo_lat)
        & (meter_index.lat <= hi_lat)
    )
    assert np.array_equal(got, expected) and 0 < got.size < len(meter_index)
    with pytest.raises(ValueError, match="empty bounding box"):
        bbox.query(8.0, 48.0, 7.0, 49.0)


def test_planned_outage_area_and_storm_footprints_pick_points_inside():
    lon = np.array([7.85, 7.87, 7.95, 8.20])
    lat = np.array([48.45, 48.46, 48.47, 48.60])
    area = shapely.box(7.84, 48.44, 7.88, 48.47)
    assert points_in_polygon(area, lon, lat).tolist() == [True, True, False, False]
    footprints = AreaIndex([area, shapely.Point(7.95, 48.47).buffer(0.01)], ids=["plan-1", "storm"])
    assert footprints.contains(lon, lat).tolist() == [True, True, True, False]
    assert footprints.area_of(lon, lat).tolist() == [0, 0, 1, -1]
    with pytest.raises(ValueError, match="bow"):
        AreaIndex([shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])], ids=["bow"])


def test_fix_at_a_block_of_flats_lists_every_meter_in_it():
    proj = LocalProjector(24.94, 60.17)
    x0, y0 = proj.forward(24.94, 60.17)
    lon, lat = proj.inverse(x0 + np.r_[np.zeros(20), 80.0], y0 + np.zeros(21))
    idx = ServicePointIndex([f"flat-{k}" for k in range(21)], lon, lat, projector=proj)
    m = idx.nearest(24.94, 60.17)
    assert m.ambiguous and sorted(m.candidates) == list(range(20))
