"""A realistic grid generated on real Helsinki streets traces like any imported grid."""

from __future__ import annotations

import numpy as np
import pytest

from gridmend.fixtures import roads_path
from gridmend.geo.grid_on_osm import (
    Buildings,
    build_grid_on_roads,
    classify_building,
    grid_from_osm,
    read_buildings,
)
from gridmend.geo.routing import RoadRouter
from gridmend.geo.synthetic_roads import lattice_road_graph
from gridmend.topology.elements import CustomerClass, Kind
from gridmend.topology.network import Topology


@pytest.fixture(scope="module")
def helsinki_grid(tmp_path_factory):
    return grid_from_osm("helsinki", cache_directory=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def topology(helsinki_grid) -> Topology:
    return Topology(helsinki_grid)


def test_every_meter_traces_to_a_transformer_feeder_and_substation(helsinki_grid, topology):
    assert len(topology.meters) > 500
    assert len(topology.feeders()) >= 2
    kinds = {helsinki_grid.kind_of(int(f)) for f in topology.feeders()}
    assert kinds == {Kind.BREAKER}  # every feeder starts at a breaker
    for m in topology.meters[::50]:
        trace = topology.trace(helsinki_grid.element_ids[m])
        assert trace.transformer and trace.feeder and trace.source.startswith("SS")
        # nearest protection is the fuse on the transformer's LV cable, the breaker is last
        assert trace.devices[0].startswith(trace.transformer) and trace.devices[0].endswith("FU")
        assert trace.devices[-1] == trace.feeder


def test_laterals_are_fused_and_long_main_lines_get_a_recloser(helsinki_grid, topology):
    lateral_fuses = [
        i for i in helsinki_grid.indices_of(Kind.FUSE) if "-LV" not in helsinki_grid.element_ids[i]
    ]
    assert len(lateral_fuses) > 5
    for fuse in lateral_fuses[:10]:
        assert topology.kind(topology.feeder_of(int(fuse))) == Kind.BREAKER
        assert len(topology.meters_below(int(fuse))) > 0
    assert len(helsinki_grid.indices_of(Kind.RECLOSER)) >= 1


def test_mv_lines_follow_the_streets(helsinki_grid, tmp_path_factory):
    from gridmend.geo.osm_loader import load_road_graph

    roads = load_road_graph("helsinki", cache_directory=tmp_path_factory.mktemp("c2"))
    street_points = {
        (round(x, 7), round(y, 7)) for x, y in zip(roads.geom_lon, roads.geom_lat, strict=True)
    }
    mv_lines = [i for i in helsinki_grid.line_geometry if helsinki_grid.kind_of(i) == Kind.LINE]
    assert len(mv_lines) > 20
    for i in mv_lines[:200]:
        coords = helsinki_grid.line_geometry[i]
        assert all((round(x, 7), round(y, 7)) in street_points for x, y in coords)


def test_transformers_are_a_few_hundred_metres_apart(helsinki_grid):
    from scipy.spatial import cKDTree

    from gridmend.geo.coordinates import LocalProjector

    t = helsinki_grid.indices_of(Kind.TRANSFORMER)
    proj = LocalProjector.for_points(helsinki_grid.lon[t], helsinki_grid.lat[t])
    d, _ = cKDTree(proj.xy(helsinki_grid.lon[t], helsinki_grid.lat[t])).query(
        proj.xy(helsinki_grid.lon[t], helsinki_grid.lat[t]), k=2
    )
    assert 50 < np.median(d[:, 1]) < 600


def test_meters_sit_at_osm_buildings_with_their_customer_classes(helsinki_grid, topology):
    buildings = read_buildings(roads_path("helsinki"))
    fire = [
        k for k, c in enumerate(buildings.customer_class) if c == CustomerClass.EMERGENCY_COMMAND
    ]
    assert fire, "the Helsinki extract has a fire station"
    meters = topology.meters
    classes = {helsinki_grid.class_of(int(m)) for m in meters}
    assert {
        CustomerClass.RESIDENTIAL,
        CustomerClass.COMMERCIAL,
        CustomerClass.EMERGENCY_COMMAND,
    } <= classes
    assert any(topology.is_critical(int(m)) for m in meters)
    assert len(meters) == int(buildings.units.sum())
    building_points = {
        (round(x, 9), round(y, 9)) for x, y in zip(buildings.lon, buildings.lat, strict=True)
    }
    for m in meters[::40]:
        assert (round(helsinki_grid.lon[m], 9), round(helsinki_grid.lat[m], 9)) in building_points


def test_crew_can_drive_from_substation_to_every_transformer(helsinki_grid, tmp_path_factory):
    from gridmend.geo.osm_loader import load_road_graph

    router = RoadRouter(load_road_graph("helsinki", cache_directory=tmp_path_factory.mktemp("c3")))
    source = helsinki_grid.indices_of(Kind.SOURCE)[0]
    t = helsinki_grid.indices_of(Kind.TRANSFORMER)
    sites = np.column_stack([helsinki_grid.lon[t], helsinki_grid.lat[t]])
    times = router.times_to_many(helsinki_grid.location(int(source)), sites)
    assert np.isfinite(times).all() and times.max() < 30 * 60


@pytest.mark.parametrize(
    ("tags", "cls"),
    [
        ({"amenity": "hospital", "building": "yes"}, CustomerClass.HOSPITAL),
        ({"man_made": "water_works"}, CustomerClass.WATER_WORKS),
        ({"amenity": "fire_station"}, CustomerClass.EMERGENCY_COMMAND),
        ({"building": "telecommunication"}, CustomerClass.TELECOM),
        ({"building": "warehouse"}, CustomerClass.INDUSTRIAL),
        ({"building": "yes", "shop": "bakery"}, CustomerClass.COMMERCIAL),
        ({"building": "apartments"}, CustomerClass.RESIDENTIAL),
    ],
)
def test_building_tags_become_customer_classes(tags, cls):
    assert classify_building(tags) == cls


def test_generator_works_on_any_road_graph_and_stays_radial():
    roads = lattice_road_graph(30, 30, seed=3)
    rng = np.random.default_rng(5)
    k = 400
    nodes = rng.integers(0, roads.n_nodes, k)
    buildings = Buildings(
        osm_id=np.arange(k),
        lon=roads.node_lon[nodes] + rng.normal(0, 2e-4, k),
        lat=roads.node_lat[nodes] + rng.normal(0, 1e-4, k),
        customer_class=[CustomerClass.RESIDENTIAL] * (k - 1) + [CustomerClass.HOSPITAL],
        units=np.ones(k, np.int64),
        address=[None] * k,
    )
    grid = build_grid_on_roads(roads, buildings, n_substations=3, name="lattice-grid")
    topo = Topology(grid)  # raises on loops or unfed meters
    assert len(topo.meters) == k
    assert len({topo.source_of(int(m)) for m in topo.meters}) == 3
    assert topo.critical_below(int(topo.feeder_of(int(topo.meters[-1])))).size >= 1
    with pytest.raises(ValueError, match="no buildings"):
        build_grid_on_roads(
            roads,
            Buildings(
                np.empty(0, np.int64), np.empty(0), np.empty(0), [], np.empty(0, np.int64), []
            ),
        )


def test_gps_fix_at_a_generated_building_resolves_to_its_meters(helsinki_grid):
    from gridmend.geo.spatial_index import ServicePointIndex

    index = ServicePointIndex.for_meters(helsinki_grid)
    assert len(index) == len(helsinki_grid.indices_of(Kind.METER))
    m = int(index.meters[10])
    match = index.nearest(float(helsinki_grid.lon[m]), float(helsinki_grid.lat[m]), 30.0)
    assert match is not None and match.distance_m < 1e-6
    # a block of flats has several meters at one point: the answer must say so
    assert match.id == helsinki_grid.element_ids[m] or (match.ambiguous and 10 in match.candidates)
