"""Hurricane best tracks become wind footprints over any grid."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from gridmend.fixtures import HERE, HURDAT2
from gridmend.geo.hurricane import (
    StormTrackError,
    gust_field,
    interpolate,
    peak_gusts,
    read_hurdat2,
    transpose,
)

TRACKS = HERE / HURDAT2
OFFENBURG = (7.94, 48.47)


@pytest.fixture(scope="module")
def florence():
    return read_hurdat2(TRACKS, "FLORENCE 2018")


def test_florence_makes_landfall_at_wrightsville_beach(florence):
    i = florence.landfall_index
    assert florence.name == "Florence 2018"
    assert (florence.lon[i], florence.lat[i]) == (-77.8, 34.2)
    assert florence.max_wind_ms[i] == pytest.approx(80 * 0.514444)
    assert florence.pressure_hpa[i] == 956
    assert 10 < florence.rmw_km[i] < 80


def test_a_storm_can_be_named_by_its_atcf_id():
    michael = read_hurdat2(TRACKS, "AL142018")
    assert michael.name == "Michael 2018"
    assert michael.max_wind_ms.max() == pytest.approx(140 * 0.514444)


def test_an_unknown_storm_is_named_in_the_error():
    with pytest.raises(StormTrackError, match="KATRINA 2005"):
        read_hurdat2(TRACKS, "KATRINA 2005")


def test_transposition_puts_landfall_on_the_grid_and_keeps_the_track_shape(florence):
    moved = transpose(interpolate(florence), OFFENBURG, start_time=0.0)
    i = moved.landfall_index
    assert moved.lon[i] == pytest.approx(OFFENBURG[0])
    assert moved.lat[i] == pytest.approx(OFFENBURG[1])
    assert moved.time[i] == pytest.approx(0.0)
    geod = Geod(ellps="WGS84")
    original = interpolate(florence)
    _, _, d0 = geod.inv(original.lon[i - 6], original.lat[i - 6], original.lon[i], original.lat[i])
    _, _, d1 = geod.inv(moved.lon[i - 6], moved.lat[i - 6], moved.lon[i], moved.lat[i])
    assert d1 == pytest.approx(d0, rel=0.01)


def test_gusts_peak_near_the_eyewall_and_are_stronger_right_of_the_track(florence):
    moved = transpose(interpolate(florence), OFFENBURG)
    i = moved.landfall_index
    geod = Geod(ellps="WGS84")
    distances = np.array([5e3, moved.rmw_km[i] * 1000, 150e3, 400e3])
    # Florence moved north-west at landfall; right of track is north-east.
    heading, _, _ = geod.inv(moved.lon[i], moved.lat[i], moved.lon[i + 1], moved.lat[i + 1])
    right_lon, right_lat, _ = geod.fwd(
        np.full(4, moved.lon[i]), np.full(4, moved.lat[i]), np.full(4, heading + 90), distances
    )
    left_lon, left_lat, _ = geod.fwd(
        np.full(4, moved.lon[i]), np.full(4, moved.lat[i]), np.full(4, heading - 90), distances
    )
    right = gust_field(moved, i, right_lon, right_lat)
    left = gust_field(moved, i, left_lon, left_lat)
    assert right[1] == right.max()  # strongest at the radius of maximum wind
    assert right[1] > right[0] and right[1] > right[3]
    assert (right > left).all()
    assert 40 < right[1] < 70  # a category-1 landfall gusts to 50–60 m/s


def test_peak_gusts_arrive_before_their_peak_and_only_near_the_track(florence):
    moved = transpose(interpolate(florence), OFFENBURG, start_time=0.0)
    lon = np.array([OFFENBURG[0] + 0.3, OFFENBURG[0] + 30.0])
    lat = np.array([OFFENBURG[1], OFFENBURG[1]])
    peak, peak_time, first = peak_gusts(moved, lon, lat)
    assert peak[0] > 30 and peak[1] < 20  # 2,000 km east of landfall: a breeze at most
    assert first[0] <= peak_time[0]
    assert np.isnan(first[1])
