"""After restoration: customers confirm, a dark customer reopens or splits; repeat offenders."""

from __future__ import annotations

import numpy as np
import pytest

from gridmend.dispatch.dispatcher import Dispatcher
from gridmend.dispatch.fault_view import fault_view_for_device
from gridmend.dispatch.followup import CustomerAnswer, Decision
from gridmend.dispatch.lifecycle import WorkOrderState
from gridmend.dispatch.repeat_faults import FaultRecord, RepeatFaultRegister, Scope
from gridmend.geo.routing import ApproximateRouter
from gridmend.topology import Kind, Topology
from gridmend.topology.synthetic import generate_grid

from .crew_scenarios import T0, crew

DAY = 86_400.0


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology(generate_grid(300, seed=3, centre=(24.90, 60.20)))


def lateral_fuse_with_two_transformers(topology: Topology) -> int:
    for f in topology.grid.indices_of(Kind.FUSE).tolist():
        if len(topology.nodes_below(f, frozenset({Kind.TRANSFORMER}))) >= 2:
            return f
    raise AssertionError("no MV lateral with two transformer areas")


def restored_order(topology):
    fuse = lateral_fuse_with_two_transformers(topology)
    view = fault_view_for_device(topology, fuse, T0, "F-lateral")
    dispatcher = Dispatcher(topology, ApproximateRouter(), [crew("c1", view.location)])
    dispatcher.on_fault(view, T0)
    wo = dispatcher.order_for_fault("F-lateral").work_order_id
    for i, state in enumerate(["en_route", "arrived", "repairing"]):
        dispatcher.on_crew_event("c1", wo, state, T0 + 60 * (i + 1))
    events = dispatcher.on_crew_event("c1", wo, "restored", T0 + 3600, cause="vegetation")
    return dispatcher, wo, fuse, events


def test_restoration_asks_every_affected_customer(topology):
    dispatcher, _wo, fuse, events = restored_order(topology)
    asked = [e for e in events if e.type == "follow_up_requested"]
    assert asked and asked[0].data["customers"] == topology.customers_below(fuse)
    assert dispatcher.crews["c1"].current_job is None


def test_everyone_with_power_closes_the_order_after_the_answer_window(topology):
    dispatcher, wo, fuse, _ = restored_order(topology)
    meters = topology.meters_below(fuse)
    for m in meters[:5].tolist():
        decision = dispatcher.follow_up_answer(
            wo, CustomerAnswer(m, True, T0 + 4000, rating=4), T0 + 4000
        )
    assert decision.decision == Decision.WAIT and decision.mean_rating == 4.0
    dispatcher.tick(T0 + 3600 + 2 * 3600 + 1)
    assert dispatcher.orders[wo].state == WorkOrderState.CLOSED


def test_one_customer_still_dark_splits_off_a_customer_side_visit(topology):
    dispatcher, wo, fuse, _ = restored_order(topology)
    m = int(topology.meters_below(fuse)[0])
    decision = dispatcher.follow_up_answer(wo, CustomerAnswer(m, False, T0 + 4000), T0 + 4000)
    assert decision.decision == Decision.SPLIT and decision.customer_side
    assert decision.suspected_device == topology.transformer_of(m)


def test_a_whole_transformer_area_still_dark_splits_at_that_transformer(topology):
    dispatcher, wo, fuse, _ = restored_order(topology)
    areas = topology.nodes_below(fuse, frozenset({Kind.TRANSFORMER}))
    dark_area = int(areas[0])
    dark = topology.meters_below(dark_area)
    lit = np.setdiff1d(topology.meters_below(fuse), dark)
    for m in dark[:3].tolist():
        dispatcher.follow_up_answer(wo, CustomerAnswer(m, False, T0 + 4000), T0 + 4000)
    for m in lit[:10].tolist():
        decision = dispatcher.follow_up_answer(wo, CustomerAnswer(m, True, T0 + 4000), T0 + 4000)
    assert decision.decision == Decision.SPLIT and not decision.customer_side
    assert topology.is_below(decision.suspected_device, dark_area) or (
        decision.suspected_device == dark_area
    )
    events = dispatcher.reopen(decision, T0 + 4100)
    new = next(e for e in events if e.type == "work_order_created").work_order_id
    assert dispatcher.orders[new].reopens == wo


def test_most_customers_still_dark_reopens_the_fault(topology):
    dispatcher, wo, fuse, _ = restored_order(topology)
    for m in topology.meters_below(fuse)[:6].tolist():
        decision = dispatcher.follow_up_answer(wo, CustomerAnswer(m, False, T0 + 4000), T0 + 4000)
    assert decision.decision == Decision.REOPEN and decision.suspected_device == fuse


def test_repeated_fault_register_lists_an_area_with_two_faults_in_30_days(topology):
    transformers = topology.grid.indices_of(Kind.TRANSFORMER).tolist()
    twice, spaced = int(transformers[0]), int(transformers[-1])
    register = RepeatFaultRegister(topology)
    register.add(FaultRecord("A1", twice, T0, 60, restored_time=T0 + 3600, cause="vegetation"))
    register.add(FaultRecord("A2", twice, T0 + 12 * DAY, 60, T0 + 12 * DAY + 1800, "lightning"))
    register.add(FaultRecord("B1", spaced, T0, 80, restored_time=T0 + 600))
    register.add(FaultRecord("B2", spaced, T0 + 40 * DAY, 80, restored_time=T0 + 40 * DAY + 600))
    listed = register.listing(T0 + 20 * DAY)
    areas = [e for e in listed if e.scope == Scope.TRANSFORMER_AREA]
    assert [e.element for e in areas] == [twice]
    entry = areas[0]
    assert entry.count == 2 and entry.fault_ids == ("A1", "A2")
    assert entry.causes == {"vegetation": 1, "lightning": 1}
    assert entry.customers_affected == 60
    assert entry.customer_minutes == pytest.approx(60 * 60 + 60 * 30)
    assert not [e for e in register.listing(T0 + 41 * DAY) if e.element == spaced]
    # rolling: 35 days after the first fault, the pair has left the window
    assert not [e for e in register.listing(T0 + 35 * DAY) if e.element == twice]


def test_faults_under_one_lateral_repeat_on_its_line_section(topology):
    fuse = lateral_fuse_with_two_transformers(topology)
    a, b = topology.nodes_below(fuse, frozenset({Kind.TRANSFORMER}))[:2].tolist()
    register = RepeatFaultRegister(topology)
    register.add(FaultRecord("X1", a, T0, 10))
    register.add(FaultRecord("X2", b, T0 + DAY, 20))
    sections = [e for e in register.listing(T0 + 2 * DAY) if e.scope == Scope.LINE_SECTION]
    assert [e.element for e in sections] == [fuse] and sections[0].count == 2


def test_restorations_reach_the_register_with_their_cause(topology):
    dispatcher, _wo, _fuse, _ = restored_order(topology)
    record = dispatcher.register.records["F-lateral"]
    assert record.cause == "vegetation" and record.restored_time == T0 + 3600
