"""Real OpenStreetMap roads load into a compact, cached, strongly connected graph."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from gridmend.fixtures import roads_path
from gridmend.geo.osm_loader import RoadNetworkError, load_road_graph
from gridmend.geo.road_graph import build_road_graph, parse_maxspeed, truck_speed_kmh


def test_helsinki_drivable_network_has_its_streets_one_ways_and_speeds(helsinki):
    g = helsinki
    assert 1000 < g.n_nodes < 1500 and 1500 < g.n_edges < 2500
    assert 0.2 < g.oneway.mean() < 0.6  # central Helsinki has many one-way streets
    assert set(g.highway_classes) >= {"primary", "secondary", "residential"}
    # maxspeed 30 → 85 % of it for a truck; 40 → 34 km/h
    assert set(np.unique(g.speed_kmh)) <= {25.5, 34.0, 35.0}
    assert 20 < g.length_m.sum() / 1000 < 40
    assert (g.base_time_ds > 0).all()
    expected = np.ceil(g.length_m.astype(float) / (g.speed_kmh / 3.6) / 0.1)
    assert np.allclose(g.base_time_ds, np.maximum(expected, 1), atol=1)


def test_every_node_reaches_every_other_one(helsinki):
    n, _ = connected_components(helsinki.forward_csr(), directed=True, connection="strong")
    assert n == 1


def test_edge_shapes_run_from_tail_to_head(helsinki):
    g = helsinki
    first = g.geom_offsets[:-1]
    last = g.geom_offsets[1:] - 1
    assert np.allclose(g.geom_lon[first], g.node_lon[g.tail])
    assert np.allclose(g.geom_lat[last], g.node_lat[g.head])


def test_two_way_streets_have_twins_and_one_ways_do_not(helsinki):
    g = helsinki
    two = np.flatnonzero(g.twin >= 0)
    assert (g.twin[g.twin[two]] == two).all()
    assert (g.tail[g.twin[two]] == g.head[two]).all()
    assert (g.way_id[g.twin[two]] == g.way_id[two]).all()


def test_second_load_comes_from_cache_with_identical_arrays(road_cache):
    first = load_road_graph("helsinki", cache_directory=road_cache)
    again = load_road_graph("helsinki", cache_directory=road_cache)
    assert again.source_info["cache_hit"] is True
    for key, value in first.to_arrays().items():
        assert np.array_equal(value, again.to_arrays()[key]), key


def test_cache_is_rebuilt_when_the_source_file_changes(tmp_path):
    pbf = tmp_path / "city.osm.pbf"
    shutil.copy(roads_path("helsinki"), pbf)
    cache = tmp_path / "cache"
    assert load_road_graph(pbf, cache_directory=cache).source_info["cache_hit"] is False
    assert load_road_graph(pbf, cache_directory=cache).source_info["cache_hit"] is True
    st = pbf.stat()
    os.utime(pbf, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert load_road_graph(pbf, cache_directory=cache).source_info["cache_hit"] is False
    assert load_road_graph(pbf, cache_directory=cache).source_info["cache_hit"] is True
    pbf.write_bytes(b"not a pbf at all")
    with pytest.raises(RoadNetworkError, match=r"city\.osm\.pbf"):
        load_road_graph(pbf, cache_directory=cache)


def test_unknown_road_source_names_the_problem():
    with pytest.raises(RoadNetworkError, match="atlantis"):
        load_road_graph("atlantis")


OSM_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="handmade">
  <node id="1" lat="60.1700" lon="24.9400" version="1"/>
  <node id="2" lat="60.1700" lon="24.9420" version="1"/>
  <node id="3" lat="60.1710" lon="24.9420" version="1"/>
  <node id="4" lat="60.1710" lon="24.9400" version="1"/>
  <node id="5" lat="60.1720" lon="24.9400" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/>
    <tag k="highway" v="residential"/><tag k="oneway" v="yes"/><tag k="maxspeed" v="30"/></way>
  <way id="11" version="1"><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
    <tag k="highway" v="tertiary"/></way>
  <way id="12" version="1"><nd ref="4"/><nd ref="5"/><tag k="highway" v="footway"/></way>
</osm>
"""


def test_osm_xml_goes_through_osmnx_with_one_ways_and_no_footways(tmp_path):
    path = tmp_path / "block.osm"
    path.write_text(OSM_XML)
    g = load_road_graph(path, cache_directory=tmp_path / "cache")
    assert g.source_info["cache_hit"] is False
    assert g.n_nodes == 4  # the footway's far end is gone
    pairs = {
        (int(g.node_osm_id[t]), int(g.node_osm_id[h])) for t, h in zip(g.tail, g.head, strict=True)
    }
    assert (1, 2) in pairs and (2, 1) not in pairs  # one-way
    assert {(2, 3), (3, 2), (4, 1), (1, 4)} <= pairs
    e12 = next(
        e
        for e in range(g.n_edges)
        if (g.node_osm_id[g.tail[e]], g.node_osm_id[g.head[e]]) == (1, 2)
    )
    assert g.speed_kmh[e12] == pytest.approx(25.5)
    assert g.length_m[e12] == pytest.approx(111.0, rel=0.02)


@pytest.mark.parametrize(
    ("value", "kmh"),
    [
        ("50", 50.0),
        ("30 mph", 48.28),
        ("FI:urban", 50.0),
        ("30;50", 30.0),
        ("walk", 7.0),
        ("none", None),
        (None, None),
        (float("nan"), None),
        ("signals", None),
        (40, 40.0),
    ],
)
def test_posted_speed_limits_are_read_like_osm_means_them(value, kmh):
    got = parse_maxspeed(value)
    assert got == (None if kmh is None else pytest.approx(kmh, abs=0.01))


def test_truck_speed_falls_back_to_road_class_and_is_capped():
    assert truck_speed_kmh("residential", None) == 25.0
    assert truck_speed_kmh("motorway", "130") == 90.0
    assert truck_speed_kmh("primary", "50") == pytest.approx(42.5)


def test_largest_strongly_connected_component_drops_one_way_stubs():
    # 0 ⇄ 1 ⇄ 2 plus a one-way stub 2 → 3 that a crew could enter but never leave
    lon = np.array([0.0, 0.001, 0.002, 0.003]) + 24.9
    lat = np.full(4, 60.17)
    tail = np.array([0, 1, 1, 2, 2])
    head = np.array([1, 0, 2, 1, 3])
    g = build_road_graph("toy", lon, lat, tail, head, np.full(5, 55.0), np.full(5, 36.0))
    assert g.n_nodes == 3 and g.n_edges == 4
    assert (g.base_time_ds == 55).all()
    with pytest.raises(ValueError, match="speed"):
        build_road_graph("bad", lon, lat, tail, head, np.full(5, 55.0), np.zeros(5))


def test_generated_lattice_is_reproducible_and_road_like():
    from gridmend.geo.synthetic_roads import lattice_road_graph

    a = lattice_road_graph(40, 40, seed=9)
    b = lattice_road_graph(40, 40, seed=9)
    assert np.array_equal(a.base_time_ds, b.base_time_ds) and np.array_equal(a.head, b.head)
    assert 1400 < a.n_nodes <= 1600
    assert 0.05 < a.oneway.mean() < 0.4
    assert set(a.highway_classes) == {"residential", "secondary", "primary"}
    n, _ = connected_components(a.forward_csr(), directed=True, connection="strong")
    assert n == 1
