"""Crews are routed on real Helsinki streets: exact ETAs, one-ways, closures, geometry."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from pyproj import Geod

from gridmend.geo.coordinates import haversine_m
from gridmend.geo.routing import ApproximateRouter, OutOfCoverageError, RoadRouter, Router

from .conftest import node_point, nx_seconds, reference_digraph

_GEOD = Geod(ellps="WGS84")


@pytest.fixture()
def router(helsinki) -> RoadRouter:
    return RoadRouter(helsinki)


def test_etas_between_junctions_equal_networkx_dijkstra(router, helsinki, rng):
    ref = reference_digraph(helsinki)
    pairs = rng.integers(0, helsinki.n_nodes, size=(60, 2))
    for a, b in pairs:
        route = router.eta(node_point(helsinki, a), node_point(helsinki, b))
        assert route.seconds == pytest.approx(nx_seconds(ref, int(a), int(b)), abs=1e-6)
        assert route.approximate is False


def test_crew_by_fault_matrix_and_nearest_crew_equal_networkx(router, helsinki, rng):
    ref = reference_digraph(helsinki)
    crews = rng.integers(0, helsinki.n_nodes, 25)
    faults = rng.integers(0, helsinki.n_nodes, 15)
    lengths = {
        int(c): nx.single_source_dijkstra_path_length(ref, int(c), weight="w") for c in crews
    }
    expected = np.array([[lengths[int(c)][int(f)] * 0.1 for f in faults] for c in crews])
    crew_pts = [node_point(helsinki, c) for c in crews]
    fault_pts = [node_point(helsinki, f) for f in faults]
    got = router.matrix(crew_pts, fault_pts)
    assert np.allclose(got, expected, atol=1e-6)
    for j, fault in enumerate(fault_pts):
        assert np.allclose(router.times_from_many(crew_pts, fault), expected[:, j], atol=1e-6)
        best = router.nearest_crew(fault, crew_pts)
        assert best.seconds == pytest.approx(expected[:, j].min(), abs=1e-6)
        assert expected[best.index, j] == pytest.approx(expected[:, j].min(), abs=1e-6)


def test_time_cap_drops_far_destinations_only(router, helsinki, rng):
    crews = [node_point(helsinki, c) for c in rng.integers(0, helsinki.n_nodes, 10)]
    faults = [node_point(helsinki, f) for f in rng.integers(0, helsinki.n_nodes, 10)]
    full = router.matrix(crews, faults)
    cap = float(np.median(full))
    capped = router.matrix(crews, faults, cap_s=cap)
    assert np.array_equal(np.isinf(capped), full > cap)
    assert np.allclose(capped[full <= cap], full[full <= cap])
    nearest = router.nearest(crews, faults[0], cap_s=0.5)
    assert nearest.index in (-1, int(np.argmin(full[:, 0])))


def _one_way_with_long_way_back(helsinki, ref):
    for e in np.flatnonzero(helsinki.oneway):
        u, v = int(helsinki.tail[e]), int(helsinki.head[e])
        back = nx_seconds(ref, v, u)
        if back > 3 * helsinki.base_time_ds[e] * 0.1 + 10:
            return int(e), u, v, back
    raise AssertionError("Helsinki has one-way streets with a detour back")


def test_one_way_street_is_driven_only_one_way(router, helsinki):
    ref = reference_digraph(helsinki)
    _e, u, v, back = _one_way_with_long_way_back(helsinki, ref)
    there = router.eta(node_point(helsinki, u), node_point(helsinki, v))
    again = router.eta(node_point(helsinki, v), node_point(helsinki, u))
    assert there.seconds == pytest.approx(nx_seconds(ref, u, v))
    assert again.seconds == pytest.approx(back)
    assert again.seconds > there.seconds


def _midpoint(helsinki, e: int) -> tuple[float, float]:
    shape = helsinki.edge_coords(e)
    lon, lat = shape[:, 0], shape[:, 1]
    seg = _GEOD.line_lengths(lon, lat)
    half = seg.sum() / 2
    k = int(np.searchsorted(np.cumsum(seg), half))
    before = np.cumsum(seg)[k] - seg[k]
    t = (half - before) / seg[k]
    return float(lon[k] + t * (lon[k + 1] - lon[k])), float(lat[k] + t * (lat[k + 1] - lat[k]))


def test_a_point_mid_street_adds_half_the_street_at_each_end(router, helsinki):
    ref = reference_digraph(helsinki)
    e, u, v, back = _one_way_with_long_way_back(helsinki, ref)
    mid = _midpoint(helsinki, e)
    t_e = helsinki.base_time_ds[e] * 0.1
    assert router.eta(mid, node_point(helsinki, v)).seconds == pytest.approx(t_e / 2, abs=0.05)
    assert router.eta(node_point(helsinki, u), mid).seconds == pytest.approx(t_e / 2, abs=0.05)
    # against the one-way: finish the street, then drive round the block
    assert router.eta(mid, node_point(helsinki, u)).seconds == pytest.approx(
        t_e / 2 + back, abs=0.05
    )
    # and a crew half way down the street gets to a fault at its end first
    crews = [node_point(helsinki, u), mid]
    assert router.nearest_crew(node_point(helsinki, v), crews).index == 1


def test_route_geometry_runs_from_origin_to_destination_along_the_roads(router, helsinki, rng):
    _a, b = rng.integers(0, helsinki.n_nodes, 2)
    start = _midpoint(helsinki, 5)
    route = router.eta(start, node_point(helsinki, b))
    coords = np.array(route.coordinates)
    assert haversine_m(*coords[0], *start) < 1.0
    assert haversine_m(*coords[-1], *node_point(helsinki, b)) < 1e-3
    walked = _GEOD.line_length(coords[:, 0], coords[:, 1])
    assert walked == pytest.approx(route.metres, rel=0.01)
    geo = route.geojson()
    assert geo["type"] == "LineString" and len(geo["coordinates"]) == len(coords)
    assert router.eta(start, node_point(helsinki, b), geometry=False).coordinates is None


def test_same_street_trip_goes_straight_along_it(router, helsinki):
    e = int(np.flatnonzero(helsinki.twin >= 0)[0])
    shape = helsinki.edge_coords(e)
    p = tuple(shape[0] * 0.8 + shape[-1] * 0.2)
    q = tuple(shape[0] * 0.3 + shape[-1] * 0.7)
    t_e = helsinki.base_time_ds[e] * 0.1
    there = router.eta(p, q)
    assert there.seconds == pytest.approx(0.5 * t_e, rel=0.1)
    assert router.eta(q, p).seconds == pytest.approx(
        0.5 * helsinki.base_time_ds[helsinki.twin[e]] * 0.1, rel=0.1
    )


def test_a_closed_street_reroutes_and_reopening_restores(router, helsinki, rng):
    pairs = rng.integers(0, helsinki.n_nodes, size=(40, 2))
    a, b = max(
        pairs,
        key=lambda p: router.eta(node_point(helsinki, p[0]), node_point(helsinki, p[1])).seconds,
    )
    origin, target = node_point(helsinki, a), node_point(helsinki, b)
    before = router.eta(origin, target)
    middle = before.coordinates[len(before.coordinates) // 2]
    version = helsinki.version
    edges, new_version = router.close_near(*middle)
    assert new_version == version + 1 and helsinki.closed[edges].all()
    after = router.eta(origin, target)
    assert after.seconds > before.seconds
    assert after.coordinates != before.coordinates
    assert after.graph_version == new_version
    assert after.seconds == pytest.approx(nx_seconds(reference_digraph(helsinki), int(a), int(b)))
    # matrices and nearest-crew searches see the closure too
    assert router.matrix([origin], [target])[0, 0] == pytest.approx(after.seconds)
    assert router.times_from_many([origin], target)[0] == pytest.approx(after.seconds)
    router.reopen(edges)
    assert helsinki.version == new_version + 1 and not helsinki.closed.any()
    restored = router.eta(origin, target)
    assert restored.seconds == pytest.approx(before.seconds)
    assert restored.coordinates == before.coordinates


def test_closing_an_unknown_edge_names_it(helsinki):
    with pytest.raises(ValueError, match="edge 999999"):
        helsinki.close_edges([999_999])


def test_point_far_from_any_road_is_outside_coverage(router, helsinki):
    with pytest.raises(OutOfCoverageError, match="nearest road"):
        router.eta((25.5, 60.5), node_point(helsinki, 0))


def test_approximate_router_says_so_and_uses_detour_at_rural_speed():
    r: Router = ApproximateRouter()
    a, b = (7.90, 48.45), (7.95, 48.47)
    route = r.eta(a, b)
    metres = float(haversine_m(*a, *b)) * 1.3
    assert route.approximate and route.to_dict()["approximate"] is True
    assert route.metres == pytest.approx(metres)
    assert route.seconds == pytest.approx(metres / (50 / 3.6))
    crews = [(7.80, 48.40), (7.94, 48.46), (8.10, 48.60)]
    assert r.nearest_crew(b, crews).index == 1 and r.nearest_crew(b, crews).approximate
    m = r.matrix(crews, [a, b])
    assert m.shape == (3, 2) and m[1, 1] == pytest.approx(r.eta(crews[1], b).seconds)
    assert math.isinf(r.matrix(crews, [a], cap_s=60)[2, 0])


def test_flood_zone_closes_every_street_it_touches(router, helsinki):
    import shapely

    centre = node_point(helsinki, 100)
    zone = shapely.Point(centre).buffer(0.001)
    edges, version = router.close_within(zone)
    assert edges.size > 0 and version == helsinki.version and helsinki.closed[edges].all()
    ends_inside = shapely.intersects_xy(zone, helsinki.node_lon, helsinki.node_lat)
    touching = ends_inside[helsinki.tail] | ends_inside[helsinki.head]
    assert helsinki.closed[touching].all()  # every street with an end in the zone is shut
    route = router.eta(node_point(helsinki, 0), node_point(helsinki, 100))
    assert not route.reachable  # the junction itself is under water


def test_region_without_roads_gets_the_approximate_router(helsinki):
    from gridmend.fixtures import shared_data
    from gridmend.geo.routing import router_for

    data = shared_data()
    if data is None:
        pytest.skip("shared data not available")
    import geopandas as gpd

    buses = gpd.read_file(
        data / "oberrhein" / "oberrhein_schutterwald_pandapower.gpkg", layer="mv_oberrhein_bus"
    )
    points = np.column_stack([buses.geometry.x, buses.geometry.y])
    offenburg = router_for(helsinki, points)
    assert isinstance(offenburg, ApproximateRouter)
    route = offenburg.eta(tuple(points[0]), tuple(points[-1]))
    assert route.approximate and route.to_dict()["approximate"] is True
    assert isinstance(router_for(helsinki, [node_point(helsinki, 3)]), RoadRouter)
    assert isinstance(router_for(None), ApproximateRouter)


def test_nearest_crew_and_etas_stay_exact_when_crews_are_far_away():
    from gridmend.geo.synthetic_roads import lattice_road_graph

    g = lattice_road_graph(60, 60, seed=4)
    router = RoadRouter(g)
    ref = reference_digraph(g)
    rng = np.random.default_rng(8)
    west = np.flatnonzero(g.node_lon < np.quantile(g.node_lon, 0.1))
    east = np.flatnonzero(g.node_lon > np.quantile(g.node_lon, 0.9))
    crews = rng.choice(west, 12, replace=False)  # all crews on the far side of town
    crew_pts = router.snap([node_point(g, c) for c in crews])
    rev = ref.reverse(copy=False)
    for fault in rng.choice(east, 5, replace=False):
        lengths = nx.single_source_dijkstra_path_length(rev, int(fault), weight="w")
        expected = np.array([lengths[int(c)] * 0.1 for c in crews])
        best = router.nearest_crew(node_point(g, fault), crew_pts)
        assert best.seconds == pytest.approx(expected.min(), abs=1e-6)
        route = router.eta(node_point(g, crews[best.index]), node_point(g, fault))
        assert route.seconds == pytest.approx(expected.min(), abs=1e-6)
    capped = router.nearest_crew(node_point(g, east[0]), crew_pts, cap_s=30.0)
    assert capped.index == -1 and math.isinf(capped.seconds)
