"""ETA windows stay fresh, promises are watched, and escalations fire on a simulated clock."""

from __future__ import annotations

import pytest

from gridmend.dispatch.crews import CrewStatus
from gridmend.dispatch.dispatcher import Dispatcher, DispatchSettings
from gridmend.dispatch.errors import CrewConflict, UnknownCrew, UnknownWorkOrder
from gridmend.dispatch.escalation import Escalation, EscalationSettings, EscalationType
from gridmend.dispatch.lifecycle import WorkOrderState
from gridmend.geo.routing import ApproximateRouter
from gridmend.topology import Topology
from gridmend.topology.elements import ServiceClass
from gridmend.topology.synthetic import generate_grid

from .crew_scenarios import T0, at, crew, fault

HOUR = 3600.0


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology(generate_grid(300, seed=3, centre=(24.90, 60.20)))


def escalations(events, kind: EscalationType) -> list[Escalation]:
    return [e for e in events if isinstance(e, Escalation) and e.type == kind]


def started(topology, *crews, fault_view=None):
    dispatcher = Dispatcher(topology, ApproximateRouter(), list(crews))
    dispatcher.on_fault(fault_view or fault("F-1", at(0, 0)), T0)
    return dispatcher, dispatcher.order_for_fault((fault_view or fault("F-1", at(0, 0))).fault_id)


def test_eta_is_a_window_around_the_road_time_and_is_refreshed_on_every_gps_ping(topology):
    dispatcher, order = started(topology, crew("c1", at(10_000, 0)))
    first = dispatcher.eta_of(order.work_order_id)
    assert first.earliest < first.expected < first.latest
    assert first.approximate  # no road network: the window says so
    dispatcher.on_crew_event("c1", order.work_order_id, "en_route", T0 + 60)
    events = dispatcher.on_gps("c1", *at(5_000, 0), T0 + 300)
    refreshed = dispatcher.eta_of(order.work_order_id)
    assert [e.type for e in events if not isinstance(e, Escalation)] == ["eta"]
    assert refreshed.computed_at == T0 + 300
    assert refreshed.expected < first.expected  # half way there


def test_promise_at_risk_is_flagged_the_moment_predicted_arrival_passes_45_min_urban(topology):
    urban = fault("F-urban", at(0, 0), service_class=ServiceClass.URBAN)
    dispatcher, order = started(topology, crew("c1", at(20_000, 0)), fault_view=urban)
    assert order.state == WorkOrderState.ASSIGNED
    deadline = T0 + 45 * 60
    assert dispatcher.eta_of(order.work_order_id).promise_deadline == deadline
    assert not dispatcher.eta_of(order.work_order_id).at_risk
    dispatcher.on_crew_event("c1", order.work_order_id, "en_route", T0 + 30)
    flagged_at = None
    for minute in range(1, 40):  # the truck is stuck in traffic, pinging every minute
        t = T0 + minute * 60
        events = dispatcher.on_gps("c1", *at(20_000, 0), t)
        eta = dispatcher.eta_of(order.work_order_id)
        risk = escalations(events, EscalationType.PROMISE_AT_RISK)
        if eta.expected <= deadline:
            assert not risk, f"flagged early at minute {minute}"
        elif flagged_at is None:
            assert len(risk) == 1 and risk[0].time == t and risk[0].crew_id == "c1"
            flagged_at = minute
        else:
            assert not risk  # once, not on every ping
    assert flagged_at is not None and flagged_at < 20


def test_a_rural_area_gets_90_minutes(topology):
    rural = fault("F-rural", at(0, 0), service_class=ServiceClass.RURAL)
    dispatcher, order = started(topology, crew("c1", at(45_000, 0)), fault_view=rural)
    eta = dispatcher.eta_of(order.work_order_id)
    assert eta.promise_deadline == T0 + 90 * 60
    assert not eta.at_risk  # ≈ 70 min drive: inside 90, outside 45


def test_no_restoration_48h_after_dispatch_fires_on_a_simulated_clock_and_not_before(topology):
    dispatcher, order = started(topology, crew("c1", at(1_000, 0)))
    dispatched = order.dispatched_at
    wo = order.work_order_id
    dispatcher.on_crew_event("c1", wo, "en_route", T0 + 60)
    dispatcher.on_crew_event("c1", wo, "arrived", T0 + 600)
    dispatcher.on_crew_event("c1", wo, "repairing", T0 + 900)
    for t in (T0 + HOUR, T0 + 24 * HOUR, dispatched + 48 * HOUR - 1):
        assert not escalations(dispatcher.tick(t), EscalationType.NO_RESTORATION)
    fired = escalations(dispatcher.tick(dispatched + 48 * HOUR), EscalationType.NO_RESTORATION)
    assert len(fired) == 1 and fired[0].work_order_id == wo and "48 h" in fired[0].reason
    assert not escalations(dispatcher.tick(dispatched + 49 * HOUR), EscalationType.NO_RESTORATION)


def test_restored_in_time_never_escalates(topology):
    dispatcher, order = started(topology, crew("c1", at(1_000, 0)))
    wo = order.work_order_id
    for i, state in enumerate(["accepted", "en_route", "arrived", "repairing", "restored"]):
        dispatcher.on_crew_event("c1", wo, state, T0 + 60 * (i + 1))
    assert not [e for e in dispatcher.tick(T0 + 60 * HOUR) if isinstance(e, Escalation)]


def test_no_crew_available_within_n_minutes_escalates(topology):
    settings = DispatchSettings(escalation=EscalationSettings(no_crew_s=20 * 60))
    dispatcher = Dispatcher(topology, ApproximateRouter(), [crew("c1", at(0, 0), "tree")], settings)
    dispatcher.on_fault(fault("F-1", at(0, 0)), T0)
    assert not escalations(dispatcher.tick(T0 + 19 * 60), EscalationType.NO_CREW_AVAILABLE)
    fired = escalations(dispatcher.tick(T0 + 20 * 60), EscalationType.NO_CREW_AVAILABLE)
    assert len(fired) == 1 and "20 min" in fired[0].reason


def test_promise_broken_when_no_crew_is_on_site_by_the_deadline(topology):
    dispatcher, order = started(topology, crew("c1", at(30_000, 0)))
    assert not escalations(dispatcher.tick(T0 + 44 * 60), EscalationType.PROMISE_BROKEN)
    broken = escalations(dispatcher.tick(T0 + 46 * 60), EscalationType.PROMISE_BROKEN)
    assert len(broken) == 1 and broken[0].work_order_id == order.work_order_id


def test_a_late_gps_ping_after_arrived_does_not_move_the_job_back(topology):
    dispatcher, order = started(topology, crew("c1", at(3_000, 0)))
    wo = order.work_order_id
    dispatcher.on_crew_event("c1", wo, "en_route", T0 + 60)
    dispatcher.on_crew_event("c1", wo, "arrived", T0 + 600, position=at(0, 0))
    late = dispatcher.on_gps("c1", *at(1_500, 0), T0 + 300)  # sent before arrival, late
    assert [e.type for e in late] == ["gps_ignored"]
    assert dispatcher.crews["c1"].position == at(0, 0)
    moving = dispatcher.on_gps("c1", *at(50, 0), T0 + 700)  # walking round the site
    assert moving == []
    assert order.state == WorkOrderState.ARRIVED
    assert dispatcher.crews["c1"].status == CrewStatus.ON_SITE
    assert dispatcher.eta_of(wo) is None
    stale = dispatcher.on_crew_event("c1", wo, "en_route", T0 + 500)
    assert [e.type for e in stale] == ["crew_event_ignored"] and order.state == "arrived"


def test_crew_events_name_unknown_crews_jobs_and_the_wrong_crew(topology):
    dispatcher, order = started(topology, crew("c1", at(3_000, 0)), crew("c2", at(9_000, 0)))
    with pytest.raises(UnknownCrew, match="'c9'") as err:
        dispatcher.on_gps("c9", 24.9, 60.2, T0)
    assert err.value.http_status == 404
    with pytest.raises(UnknownWorkOrder, match="WO-999"):
        dispatcher.on_crew_event("c1", "WO-999", "en_route", T0)
    with pytest.raises(CrewConflict, match="assigned to c1, not to crew c2"):
        dispatcher.on_crew_event("c2", order.work_order_id, "en_route", T0)
