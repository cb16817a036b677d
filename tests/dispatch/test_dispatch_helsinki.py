"""End to end on real roads: Helsinki streets, a grid built on them, faults from the engine."""

from __future__ import annotations

import numpy as np
import pytest

from gridmend.dispatch.crews import Crew, Skill
from gridmend.dispatch.dispatcher import Dispatcher
from gridmend.dispatch.escalation import Escalation
from gridmend.dispatch.fault_view import fault_view_for_device, fault_view_from_engine
from gridmend.dispatch.inference import OutageEngine
from gridmend.dispatch.lifecycle import WorkOrderState
from gridmend.dispatch.reports import Channel, Report
from gridmend.geo.grid_on_osm import grid_from_osm
from gridmend.geo.osm_loader import load_road_graph
from gridmend.geo.routing import RoadRouter
from gridmend.topology import Kind, Topology

from .crew_scenarios import T0


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory):
    cache = tmp_path_factory.mktemp("roads")
    graph = load_road_graph("helsinki", cache_directory=cache)
    topology = Topology(grid_from_osm("helsinki", cache_directory=cache))
    return RoadRouter(graph), topology


def crews_on_streets(router: RoadRouter, n: int, seed: int) -> list[Crew]:
    graph = router.graph
    nodes = np.random.default_rng(seed).choice(graph.n_nodes, n, replace=False)
    return [
        Crew(
            crew_id=f"hel-{i}",
            staff_number=f"{4000 + i}",
            skills=frozenset({Skill.MV, Skill.LV}),
            depot=(float(graph.node_lon[v]), float(graph.node_lat[v])),
        )
        for i, v in enumerate(nodes.tolist())
    ]


def test_each_fault_goes_to_the_crew_that_arrives_first_by_road(helsinki):
    router, topology = helsinki
    crews = crews_on_streets(router, 8, seed=11)
    positions = [c.position for c in crews]
    grid = topology.grid
    picks = np.random.default_rng(5).choice(grid.indices_of(Kind.TRANSFORMER), 6, replace=False)
    for k, device in enumerate(picks.tolist()):
        dispatcher = Dispatcher(topology, router, crews_on_streets(router, 8, seed=11))
        view = fault_view_for_device(topology, device, T0, f"F-{k}")
        dispatcher.on_fault(view, T0)
        order = dispatcher.order_for_fault(f"F-{k}")
        times = router.times_from_many(positions, view.location)
        assert order.crew_id == crews[int(np.argmin(times))].crew_id
        eta = dispatcher.eta_of(order.work_order_id)
        assert eta.expected == pytest.approx(T0 + times.min(), abs=1.0)
        assert not eta.approximate
        assert view.service_class.value == "urban" and eta.promise_deadline == T0 + 45 * 60


def test_an_outage_from_last_gasps_is_dispatched_tracked_and_closed(helsinki):
    router, topology = helsinki
    grid = topology.grid
    transformer = int(grid.indices_of(Kind.TRANSFORMER)[3])
    engine = OutageEngine(topology)
    for i, m in enumerate(topology.meters_below(transformer).tolist()):
        engine.ingest(Report(f"r{i}", T0 + i, Channel.AMI_LAST_GASP, meter_id=grid.element_ids[m]))
    engine.advance(T0 + 120)
    faults = engine.active_faults()
    assert faults, "the engine should see the transformer area out"
    view = fault_view_from_engine(engine, faults[0])
    assert view.customers >= len(topology.meters_below(transformer))

    dispatcher = Dispatcher(topology, router, crews_on_streets(router, 5, seed=3))
    dispatcher.on_fault(view, T0 + 120)
    order = dispatcher.order_for_fault(view.fault_id)
    wo, crew_id = order.work_order_id, order.crew_id
    route = dispatcher.route(wo)
    assert route.coordinates and not route.approximate
    dispatcher.on_crew_event(crew_id, wo, "accepted", T0 + 150, seq=1)
    dispatcher.on_crew_event(crew_id, wo, "en_route", T0 + 160, seq=2)
    before = dispatcher.eta_of(wo).expected
    # drive: GPS pings along the kept route geometry, ETA refreshed each time
    path = route.coordinates
    ping_at = T0 + 160
    for lon, lat in path[len(path) // 3 :: max(len(path) // 3, 1)]:
        ping_at += 30
        events = dispatcher.on_gps(crew_id, lon, lat, ping_at)
        assert [e.type for e in events if not isinstance(e, Escalation)] == ["eta"]
    assert dispatcher.eta_of(wo).expected <= before + 120
    dispatcher.on_crew_event(crew_id, wo, "arrived", ping_at + 60, seq=3, position=path[-1])
    dispatcher.on_crew_event(crew_id, wo, "repairing", ping_at + 120, seq=4)
    dispatcher.on_crew_event(crew_id, wo, "restored", ping_at + 1800, seq=5, cause="fuse blown")
    assert order.state == WorkOrderState.RESTORED
    dispatcher.tick(ping_at + 1800 + 3 * 3600)  # nobody complained within the window
    assert order.state == WorkOrderState.CLOSED
    assert [e.to_state.value for e in order.events] == [
        "assigned", "accepted", "en_route", "arrived", "repairing", "restored", "closed",
    ]  # fmt: skip
    snapshot = dispatcher.snapshot(ping_at + 1800)
    assert snapshot["crews"] and snapshot["work_orders"][0]["state"] == "closed"
