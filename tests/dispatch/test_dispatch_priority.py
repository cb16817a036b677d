"""Hospitals first, then main line before branches, then the most customers."""

from __future__ import annotations

import pytest

from gridmend.dispatch.dispatcher import Dispatcher, DispatchSettings
from gridmend.dispatch.lifecycle import WorkOrderState
from gridmend.dispatch.priority import PriorityWeights, priority_of, rank_faults
from gridmend.geo.routing import ApproximateRouter
from gridmend.topology import Kind, Topology
from gridmend.topology.synthetic import generate_grid

from .crew_scenarios import T0, at, crew, fault


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology(generate_grid(300, seed=3, centre=(24.90, 60.20)))


def hospital_fuse(where=at(8_000, 0), reported=T0):
    return fault("F-hospital", where, kind=Kind.FUSE, customers=40, critical=1, reported=reported)


def residential_breaker(where=at(1_000, 0)):
    return fault("F-estate", where, kind=Kind.BREAKER, customers=2_000)


def test_a_hospital_fault_ranks_above_a_larger_residential_fault():
    ranked = rank_faults([residential_breaker(), hospital_fuse()], T0)
    assert [p.fault_id for p in ranked] == ["F-hospital", "F-estate"]
    assert ranked[0].parts["critical"] > 0 and ranked[1].parts["customers"] == 2_000


def test_main_line_before_branches_then_customers_then_promise():
    breaker = fault("breaker", at(0, 0), kind=Kind.BREAKER, customers=300)
    recloser = fault("recloser", at(0, 0), kind=Kind.RECLOSER, customers=900)
    fuse = fault("fuse", at(0, 0), kind=Kind.FUSE, customers=2_000)
    transformer = fault("transformer", at(0, 0), kind=Kind.TRANSFORMER, customers=2_500)
    order = [p.fault_id for p in rank_faults([transformer, fuse, recloser, breaker], T0)]
    assert order == ["breaker", "recloser", "fuse", "transformer"]
    big = fault("big", at(0, 0), customers=500)
    small_old = fault("small-old", at(0, 0), customers=100, reported=T0 - 40 * 60)
    assert [p.fault_id for p in rank_faults([small_old, big], T0)] == ["big", "small-old"]
    same_old = fault("same-old", at(0, 0), customers=500, reported=T0 - 40 * 60)
    assert [p.fault_id for p in rank_faults([big, same_old], T0)] == ["same-old", "big"]


def test_weights_are_configurable():
    customers_first = PriorityWeights(critical=0.0, critical_each=0.0, main_line=0.0)
    ranked = rank_faults([hospital_fuse(), residential_breaker()], T0, customers_first)
    assert ranked[0].fault_id == "F-estate"
    assert priority_of(hospital_fuse(), T0, customers_first).parts["critical"] == 0.0


def test_a_hospital_feeder_fault_pre_empts_a_larger_residential_fault(topology):
    dispatcher = Dispatcher(topology, ApproximateRouter(), [crew("c1", at(0, 0))])
    dispatcher.on_fault(residential_breaker(), T0)
    estate = dispatcher.order_for_fault("F-estate")
    dispatcher.on_crew_event("c1", estate.work_order_id, "en_route", T0 + 60)

    events = dispatcher.on_fault(hospital_fuse(reported=T0 + 120), T0 + 120)

    hospital = dispatcher.order_for_fault("F-hospital")
    c1 = dispatcher.crews["c1"]
    assert c1.current_job == hospital.work_order_id and hospital.crew_id == "c1"
    released = [e for e in events if e.type == "released"]
    assert released and released[0].work_order_id == estate.work_order_id
    assert "pre-empted" in released[0].data["reason"]
    # the estate is not forgotten: it waits for the same crew, behind the hospital
    assert estate.state == WorkOrderState.ASSIGNED and c1.queue == [estate.work_order_id]


def test_no_pre_emption_once_the_crew_is_on_site(topology):
    dispatcher = Dispatcher(topology, ApproximateRouter(), [crew("c1", at(0, 0))])
    dispatcher.on_fault(residential_breaker(), T0)
    estate = dispatcher.order_for_fault("F-estate").work_order_id
    dispatcher.on_crew_event("c1", estate, "en_route", T0 + 60)
    dispatcher.on_crew_event("c1", estate, "arrived", T0 + 300)
    dispatcher.on_fault(hospital_fuse(reported=T0 + 400), T0 + 400)
    assert dispatcher.crews["c1"].current_job == estate
    assert dispatcher.crews["c1"].queue == [dispatcher.order_for_fault("F-hospital").work_order_id]


def test_storm_mode_batch_plan_sends_the_one_crew_to_the_hospital(topology):
    settings = DispatchSettings(storm_threshold=2)
    dispatcher = Dispatcher(topology, ApproximateRouter(), [crew("c1", at(0, 0), "tree")], settings)
    dispatcher.on_fault(residential_breaker(), T0)  # nobody has MV skills yet: both wait
    dispatcher.on_fault(hospital_fuse(), T0)
    assert dispatcher.storm_mode
    dispatcher.crews["c1"].skills = frozenset(dispatcher.crews["c1"].skills | {"mv"})
    events = dispatcher.tick(T0 + 60)
    assert any(e.type == "reoptimised" for e in events)
    assert dispatcher.order_for_fault("F-hospital").crew_id == "c1"
    assert dispatcher.order_for_fault("F-estate").state == WorkOrderState.CREATED
