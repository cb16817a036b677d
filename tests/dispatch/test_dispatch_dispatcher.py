"""The dispatcher's bookkeeping: visits, moved faults, storm re-planning, shift ends."""

from __future__ import annotations

import pytest

from gridmend.dispatch.crews import ShiftWindow, Skill
from gridmend.dispatch.dispatcher import Dispatcher, DispatchSettings
from gridmend.dispatch.lifecycle import WorkOrderState
from gridmend.geo.routing import ApproximateRouter
from gridmend.topology import Kind, Topology
from gridmend.topology.synthetic import generate_grid

from .crew_scenarios import T0, at, crew, fault

S = WorkOrderState


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology(generate_grid(300, seed=3, centre=(24.90, 60.20)))


def test_a_booked_electrician_visit_needs_an_lv_crew_and_is_not_a_grid_fault(topology):
    crews = [crew("mv-only", at(0, 0), "mv"), crew("lv-crew", at(5_000, 0), "lv")]
    dispatcher = Dispatcher(topology, ApproximateRouter(), crews)
    meter = int(topology.meters[0])
    dispatcher.book_customer_visit("V-1", meter, T0)
    order = dispatcher.order_for_fault("V-1")
    assert order.kind == "customer_visit" and order.crew_id == "lv-crew"
    assert "V-1" not in dispatcher.register.records
    assert dispatcher.eta_of(order.work_order_id).promise_deadline == T0 + 120 * 60


def test_when_the_engine_moves_a_fault_the_order_and_eta_follow(topology):
    dispatcher = Dispatcher(topology, ApproximateRouter(), [crew("c1", at(0, 0))])
    dispatcher.on_fault(fault("F-1", at(2_000, 0)), T0)
    order = dispatcher.order_for_fault("F-1")
    first = dispatcher.eta_of(order.work_order_id).expected
    events = dispatcher.on_fault(fault("F-1", at(6_000, 0), customers=400), T0 + 60)
    assert [e.type for e in events] == ["eta"]
    assert order.location == at(6_000, 0)
    assert dispatcher.eta_of(order.work_order_id).expected > first + 60
    assert len(dispatcher.orders) == 1


def test_storm_tick_replans_waiting_work_but_keeps_en_route_crews_on_course(topology):
    settings = DispatchSettings(storm_threshold=3)
    crews = [crew("c1", at(0, 0)), crew("c2", at(20_000, 0))]
    dispatcher = Dispatcher(topology, ApproximateRouter(), crews, settings)
    dispatcher.on_fault(fault("F-a", at(1_000, 0)), T0)
    dispatcher.on_fault(fault("F-b", at(19_000, 0)), T0)
    for fid in ("F-a", "F-b"):
        order = dispatcher.order_for_fault(fid)
        dispatcher.on_crew_event(order.crew_id, order.work_order_id, "en_route", T0 + 30)
    for k in range(4):  # the storm: four more faults, each queued behind a crew
        dispatcher.on_fault(fault(f"F-{k}", at(3_000 + 4_000 * k, 500)), T0 + 60)
    assert dispatcher.storm_mode
    events = dispatcher.tick(T0 + 120)
    assert any(e.type == "reoptimised" for e in events)
    assert dispatcher.order_for_fault("F-a").crew_id == "c1"
    assert dispatcher.order_for_fault("F-b").crew_id == "c2"
    assert dispatcher.order_for_fault("F-a").state == S.EN_ROUTE
    # one next job per crew: the rest wait for the next round
    assert all(len(c.queue) <= 1 for c in dispatcher.crews.values())


def test_a_crew_going_off_shift_keeps_its_job_through_a_storm_replan(topology):
    settings = DispatchSettings(storm_threshold=2)
    day_crew = crew("day", at(0, 0), shift=ShiftWindow(T0 - 3600, T0 + 600))
    crews = [day_crew, crew("night", at(900, 0))]
    dispatcher = Dispatcher(topology, ApproximateRouter(), crews, settings)
    dispatcher.on_fault(fault("F-1", at(100, 0)), T0)
    order = dispatcher.order_for_fault("F-1")
    assert order.crew_id == "day"
    dispatcher.on_crew_event("day", order.work_order_id, "en_route", T0 + 60)
    for k in (2, 3):  # fallen trees nobody can clear yet: the storm plan runs
        dispatcher.on_fault(fault(f"F-{k}", at(5_000, k), skills=frozenset({Skill.TREE})), T0 + 700)
    assert dispatcher.storm_mode
    dispatcher.tick(T0 + 700)  # the day crew's shift is over, but it finishes this job
    assert order.crew_id == "day" and order.state == S.EN_ROUTE


def test_a_crew_that_finishes_takes_the_best_waiting_order_at_once(topology):
    settings = DispatchSettings(storm_threshold=2, defer_in_storm=True)
    dispatcher = Dispatcher(topology, ApproximateRouter(), [crew("c1", at(0, 0))], settings)
    dispatcher.on_fault(fault("F-1", at(100, 0)), T0)
    wo = dispatcher.order_for_fault("F-1").work_order_id
    dispatcher.on_crew_event("c1", wo, "en_route", T0 + 60)
    dispatcher.on_crew_event("c1", wo, "arrived", T0 + 120)
    for k in (1, 2):  # fallen trees nobody on shift can clear: a storm is building
        dispatcher.on_fault(fault(f"F-tree-{k}", at(9_000, k), skills=frozenset({Skill.TREE})), T0)
    assert dispatcher.storm_mode
    # in a storm new faults only open orders; the plan runs on the tick …
    for fid, where, kind in (
        ("F-near", at(500, 0), Kind.FUSE),
        ("F-main", at(2_000, 0), Kind.BREAKER),
    ):
        events = dispatcher.on_fault(fault(fid, where, kind=kind, reported=T0 + 200), T0 + 200)
        assert [e.type for e in events] == ["work_order_created"]
    # … but a crew that finishes takes the best waiting order at once
    events = dispatcher.on_crew_event("c1", wo, "restored", T0 + 1800)
    pulled = [e for e in events if e.type == "assigned"]
    assert pulled and pulled[0].work_order_id == dispatcher.order_for_fault("F-main").work_order_id
    assert "crew free" in pulled[0].data["reason"]


def test_a_crew_going_home_hands_back_queued_work_and_gets_none_it_cannot_start(topology):
    evening = crew("evening", at(0, 0), shift=ShiftWindow(T0 - 3600, T0 + 1800))
    dispatcher = Dispatcher(topology, ApproximateRouter(), [evening, crew("night", at(40_000, 0))])
    dispatcher.on_fault(fault("F-1", at(100, 0), kind=Kind.FUSE), T0)
    wo = dispatcher.order_for_fault("F-1").work_order_id
    assert dispatcher.order(wo).crew_id == "evening"
    dispatcher.on_crew_event("evening", wo, "en_route", T0 + 60)
    # 45 min of fuse work ahead but 30 min of shift left: the next job goes to the night crew
    dispatcher.on_fault(fault("F-2", at(200, 0)), T0 + 60)
    assert dispatcher.order_for_fault("F-2").crew_id == "night"
    # a job queued while on shift is handed back once the shift is over
    late = crew("late", at(0, 0), shift=ShiftWindow(T0 - 3600, T0 + 4 * 3600))
    early = Dispatcher(topology, ApproximateRouter(), [late])
    early.on_fault(fault("F-a", at(100, 0)), T0)
    early.on_fault(fault("F-b", at(300, 0)), T0)
    queued = early.order_for_fault("F-b")
    assert early.crews["late"].queue == [queued.work_order_id]
    events = early.tick(T0 + 5 * 3600)
    assert queued.state == S.CREATED and queued.crew_id is None
    assert any(e.type == "released" and e.data["reason"] == "crew off shift" for e in events)
