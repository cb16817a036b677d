"""Who gets sent: nearest by road, with the right skills, on shift, free soonest."""

from __future__ import annotations

import numpy as np
import pytest

from gridmend.dispatch.assignment import (
    AssignmentSettings,
    Candidate,
    OriginCache,
    choose_nearest,
    reoptimise,
    required_skills,
)
from gridmend.dispatch.crews import ShiftWindow, Skill
from gridmend.dispatch.dispatcher import Dispatcher, DispatchSettings
from gridmend.dispatch.lifecycle import WorkOrderState
from gridmend.geo.routing import ApproximateRouter, RoadRouter
from gridmend.topology import Kind, Topology
from gridmend.topology.synthetic import generate_grid

from .crew_scenarios import T0, at, crew, fault, river_town


@pytest.fixture(scope="module")
def town_router() -> RoadRouter:
    return RoadRouter(river_town())


@pytest.fixture(scope="module")
def small_topology() -> Topology:
    return Topology(generate_grid(300, seed=3, centre=(24.90, 60.20)))


def test_nearest_crew_by_road_beats_nearest_by_straight_line_across_the_river(town_router):
    blown_fuse = at(0.0, 160.0)  # north bank
    across = crew("crew-south", at(0.0, -160.0))  # 320 m away, but the bridge is 5.5 km east
    upstream = crew("crew-north", at(-1500.0, 150.0))  # 1.5 km along the same bank
    candidates = [Candidate(c.crew_id, c.position) for c in (across, upstream)]

    by_line = choose_nearest(ApproximateRouter(), blown_fuse, candidates)
    by_road = choose_nearest(town_router, blown_fuse, candidates)

    assert by_line.crew_id == "crew-south"  # what a straight-line dispatcher would do
    assert by_road.crew_id == "crew-north"
    assert not by_road.approximate
    detour = town_router.eta(across.position, blown_fuse).seconds
    assert by_road.travel_s < detour / 3


def test_the_dispatcher_sends_the_road_nearest_crew_and_keeps_the_route(
    town_router, small_topology
):
    crews = [crew("crew-south", at(0.0, -160.0)), crew("crew-north", at(-1500.0, 150.0))]
    dispatcher = Dispatcher(small_topology, town_router, crews)
    events = dispatcher.on_fault(fault("F-river", at(0.0, 160.0)), T0)
    order = dispatcher.order_for_fault("F-river")
    assert order.crew_id == "crew-north" and order.state == WorkOrderState.ASSIGNED
    assert any(e.type == "assigned" and e.crew_id == "crew-north" for e in events)
    route = dispatcher.route(order.work_order_id)
    assert len(route.coordinates) >= 2 and route.coordinates[-1][1] > at(0, 100)[1]


def test_crews_without_the_skill_or_off_shift_are_not_candidates(small_topology):
    mv_fault = fault("F-mv", at(0, 0), skills=frozenset({Skill.MV}))
    crews = [
        crew("crew-lv-only", at(100, 0), skills="lv tree"),
        crew("crew-asleep", at(50, 0), shift=ShiftWindow(T0 + 3600, T0 + 8 * 3600)),
        crew("crew-on-duty", at(9000, 0)),
    ]
    dispatcher = Dispatcher(small_topology, ApproximateRouter(), crews)
    assert [c.crew_id for c in dispatcher.candidates(mv_fault, T0)] == ["crew-on-duty"]
    dispatcher.on_fault(mv_fault, T0)
    assert dispatcher.order_for_fault("F-mv").crew_id == "crew-on-duty"
    # an hour later the night crew's shift has begun: it is a candidate for new work
    later = fault("F-mv-2", at(0, 10), reported=T0 + 3700)
    assert "crew-asleep" in [c.crew_id for c in dispatcher.candidates(later, T0 + 3700)]


def test_no_crew_with_the_skill_leaves_the_order_waiting(small_topology):
    dispatcher = Dispatcher(small_topology, ApproximateRouter(), [crew("c1", at(0, 0), "tree")])
    events = dispatcher.on_fault(fault("F-1", at(10, 10)), T0)
    assert [e.type for e in events] == ["work_order_created", "no_candidate"]
    assert dispatcher.order_for_fault("F-1").state == WorkOrderState.CREATED


def test_a_busy_crew_counts_from_the_end_of_its_current_job(small_topology):
    router = ApproximateRouter()
    crews = [crew("crew-busy", at(0, 0)), crew("crew-free", at(12_000, 0))]
    dispatcher = Dispatcher(small_topology, router, crews)
    dispatcher.on_fault(fault("F-first", at(100, 0), kind=Kind.BREAKER), T0)
    first = dispatcher.order_for_fault("F-first")
    assert first.crew_id == "crew-busy"
    dispatcher.on_crew_event("crew-busy", first.work_order_id, "en_route", T0 + 60)
    dispatcher.on_crew_event("crew-busy", first.work_order_id, "arrived", T0 + 120)
    # A second fault right next to the busy crew: the breaker job has ~2 h left, so the
    # free crew 12 km away (≈ 19 min by road) gets there first.
    dispatcher.on_fault(fault("F-second", at(200, 0), reported=T0 + 600), T0 + 600)
    assert dispatcher.order_for_fault("F-second").crew_id == "crew-free"
    # With only the busy crew left, the job queues behind its current one.
    solo = Dispatcher(small_topology, router, [crew("crew-busy", at(0, 0))])
    solo.on_fault(fault("F-first", at(100, 0)), T0)
    wo = solo.order_for_fault("F-first").work_order_id
    solo.on_crew_event("crew-busy", wo, "en_route", T0 + 60)
    events = solo.on_fault(fault("F-second", at(200, 0)), T0 + 600)
    assert any(e.type == "queued" for e in events)
    assert solo.crews["crew-busy"].queue == [solo.order_for_fault("F-second").work_order_id]


def test_mv_faults_need_mv_skills_and_faults_below_a_transformer_need_lv(small_topology):
    grid = small_topology.grid
    breaker = int(grid.indices_of(Kind.BREAKER)[0])
    transformer = int(grid.indices_of(Kind.TRANSFORMER)[0])
    lv_fuses = [
        int(f)
        for f in grid.indices_of(Kind.FUSE)
        if any(small_topology.kind(e) == Kind.TRANSFORMER for e in small_topology.chain(int(f)))
    ]
    assert required_skills(small_topology, breaker) == {Skill.MV}
    assert required_skills(small_topology, transformer) == {Skill.MV}
    assert lv_fuses and required_skills(small_topology, lv_fuses[0]) == {Skill.LV}


def _storm_pair(a_at: float, f2_at: float):
    """Crew A travelling to F1 (at 0); crew B free at -1 km; a new fault F2 further east."""
    candidates = [
        Candidate("A", at(a_at, 0), committed_to="F1"),
        Candidate("B", at(-1000, 0)),
    ]
    faults = [("F1", at(0, 0)), ("F2", at(f2_at, 0))]
    return candidates, faults


def test_storm_reoptimisation_keeps_an_en_route_crew_for_a_marginal_gain():
    candidates, faults = _storm_pair(a_at=2_000, f2_at=10_000)
    # Swapping (A→F2, B→F1) saves 4 km of driving (~6 min): below the hysteresis margin.
    plan = reoptimise(ApproximateRouter(), candidates, faults, [0.0, 0.0])
    assert plan.fault_of("A") == "F1" and plan.fault_of("B") == "F2"
    assert plan.released == []
    # Without hysteresis the same numbers would bounce crew A.
    eager = AssignmentSettings(hysteresis_s=0.0, hysteresis_share=0.0, hysteresis_points=0.0)
    plan = reoptimise(ApproximateRouter(), candidates, faults, [0.0, 0.0], settings=eager)
    assert plan.fault_of("A") == "F2" and plan.released == [("A", "F1")]


def test_storm_reoptimisation_moves_an_en_route_crew_for_a_large_gain():
    candidates, faults = _storm_pair(a_at=20_000, f2_at=40_000)
    # Swapping saves 40 km (~1 h): well past the margin.
    plan = reoptimise(ApproximateRouter(), candidates, faults, [0.0, 0.0])
    assert plan.fault_of("A") == "F2" and plan.fault_of("B") == "F1"
    assert plan.released == [("A", "F1")]


def test_storm_reoptimisation_respects_skills_and_leaves_the_rest_waiting():
    candidates = [Candidate("mv-crew", at(0, 0)), Candidate("tree-crew", at(50, 0))]
    faults = [("F-mv", at(100, 0)), ("F-tree", at(5_000, 0)), ("F-far", at(9_000, 0))]
    eligible = np.array([[True, False, True], [False, True, False]])
    plan = reoptimise(ApproximateRouter(), candidates, faults, [0, 0, 0], eligible)
    assert plan.crew_of("F-mv") == "mv-crew" and plan.crew_of("F-tree") == "tree-crew"
    assert plan.unassigned == ["F-far"]


def test_a_crew_with_nothing_within_the_storm_cap_still_gets_the_far_fault():
    plan = reoptimise(
        ApproximateRouter(), [Candidate("far", at(30_000, 0))], [("F", at(0, 0))], [0]
    )
    assert plan.crew_of("F") == "far" and plan.jobs[0].travel_s > AssignmentSettings().cap_s


def test_a_critical_fault_beyond_the_cap_takes_the_crew_from_a_lesser_job():
    candidates = [Candidate("c1", at(0, 0))]
    faults = [("F-estate", at(1_000, 0)), ("F-hospital", at(9_000, 0))]
    plan = reoptimise(ApproximateRouter(), candidates, faults, [2_000.0, 100_000.0])
    assert plan.crew_of("F-estate") == "c1"  # the hospital is beyond the 10 min storm cap …
    plan = reoptimise(
        ApproximateRouter(), candidates, faults, [2_000.0, 100_000.0], must_serve=[False, True]
    )
    assert plan.crew_of("F-hospital") == "c1"  # … unless it is marked must-serve
    assert plan.unassigned == ["F-estate"]


def test_snapped_crew_positions_are_reused_until_a_crew_moves(town_router):
    cache = OriginCache(town_router)
    fuse = at(0.0, 160.0)
    crews = [Candidate("south", at(0.0, -160.0)), Candidate("north", at(-1500.0, 150.0))]
    assert choose_nearest(town_router, fuse, crews, origins=cache).crew_id == "north"
    assert choose_nearest(town_router, fuse, crews, origins=cache).crew_id == "north"
    moved = [Candidate("south", at(100.0, 150.0)), crews[1]]  # crossed the bridge meanwhile
    assert choose_nearest(town_router, fuse, moved, origins=cache).crew_id == "south"


def test_a_crew_off_the_road_network_is_left_out_and_an_off_network_fault_is_flagged(
    town_router, small_topology
):
    crews = [crew("in-the-fields", at(0.0, 9_000.0)), crew("on-the-road", at(-1500.0, 150.0))]
    dispatcher = Dispatcher(small_topology, town_router, crews)
    dispatcher.on_fault(fault("F-road", at(0.0, 160.0)), T0)
    assert dispatcher.order_for_fault("F-road").crew_id == "on-the-road"
    events = dispatcher.on_fault(fault("F-lake", at(0.0, -9_000.0)), T0)
    flagged = [e for e in events if e.type == "out_of_coverage"]
    assert flagged and "from the nearest road" in flagged[0].data["reason"]
    assert dispatcher.order_for_fault("F-lake").state == WorkOrderState.CREATED


def test_storm_replan_goes_ahead_without_a_crew_off_the_road_network(town_router, small_topology):
    settings = DispatchSettings(storm_threshold=2)
    crews = [crew("in-the-fields", at(0.0, 9_000.0)), crew("on-the-road", at(-1500.0, 150.0))]
    dispatcher = Dispatcher(small_topology, town_router, crews, settings)
    for k, x in enumerate((0.0, 2_000.0, 4_000.0)):
        dispatcher.open_order(fault(f"F-{k}", at(x, 160.0)), T0)
    events = dispatcher.tick(T0)
    assert any(e.type == "reoptimised" for e in events)
    assert dispatcher.order_for_fault("F-0").crew_id == "on-the-road"
    assert "in-the-fields" not in {o.crew_id for o in dispatcher.orders.values()}


def test_an_on_time_bonus_favours_the_fault_whose_promise_can_still_be_kept():
    candidates = [Candidate("c1", at(0, 0))]
    faults = [("F-lost", at(2_000, 0)), ("F-savable", at(3_000, 0))]
    left = [60.0, 1_800.0]  # one promise runs out in a minute, the other in half an hour
    plain = reoptimise(ApproximateRouter(), candidates, faults, [0, 0], time_left_s=left)
    assert plain.crew_of("F-lost") == "c1"  # nearest wins without the bonus
    keen = AssignmentSettings(on_time_bonus_s=600.0)
    plan = reoptimise(
        ApproximateRouter(), candidates, faults, [0, 0], settings=keen, time_left_s=left
    )
    assert plan.crew_of("F-savable") == "c1"


def test_crews_at_one_depot_are_routed_once_and_each_still_gets_a_job():
    calls = []

    class Counting(ApproximateRouter):
        def matrix(self, origins, destinations, cap_s=float("inf")):
            calls.append(len(origins))
            return super().matrix(origins, destinations, cap_s)

    depot = at(0, 0)
    crews = [Candidate(f"c{i}", depot) for i in range(5)]
    faults = [(f"F{j}", at(500.0 * j, 0)) for j in range(8)]
    plan = reoptimise(Counting(), crews, faults, [0] * 8)
    assert calls == [1] and len(plan.jobs) == 5
    assert {j.fault_id for j in plan.jobs} == {"F0", "F1", "F2", "F3", "F4"}
