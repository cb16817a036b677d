"""Every report gets an immediate, useful answer; calls roll up to the operated device."""

from __future__ import annotations

import pytest
import shapely

from gridmend.dispatch.answers import PAID_ELECTRICIAN_OFFER, AnswerKind
from gridmend.dispatch.inference import FaultStatus, OutageEngine
from gridmend.dispatch.planned_outages import PlannedOutage
from gridmend.dispatch.reports import Channel, Scope
from tests.dispatch.inference_support import T0, call, gasp, restore, small_topology


@pytest.fixture(scope="module")
def topology():
    return small_topology()


@pytest.fixture
def engine(topology) -> OutageEngine:
    return OutageEngine(topology)


def device_of(engine: OutageEngine, fault_id: str) -> str:
    return engine.topology.grid.element_ids[engine.faults[fault_id].device]


def test_first_call_opens_a_fault_and_the_next_calls_merge_into_it(engine):
    first = engine.ingest(call("r1", "m1-0"))
    assert first.kind == AnswerKind.NEW_FAULT and first.fault_id
    second = engine.ingest(call("r2", "m1-4", 3))
    third = engine.ingest(call("r3", "m1-7", 5))
    assert second.kind == third.kind == AnswerKind.MERGED
    assert second.fault_id == third.fault_id == first.fault_id
    assert len(engine.active_faults()) == 1


def test_three_calls_under_one_transformer_become_one_transformer_fault(engine):
    for k, meter in enumerate(["m2-1", "m2-5", "m2-8"]):
        engine.ingest(call(f"r{k}", meter, k))
    [fault] = engine.active_faults()
    assert device_of(engine, fault.fault_id) == "T2"
    assert engine.customer_count(fault) == 10
    assert sorted(fault.report_ids) == ["r0", "r1", "r2"]


def test_a_repeat_call_is_a_consult_of_the_same_fault_not_a_new_order(engine):
    first = engine.ingest(call("r1", "m1-2"))
    engine.ingest(call("r2", "m1-3", 2))
    again = engine.ingest(call("r3", "m1-2", 40, text="still no power"))
    assert again.kind == AnswerKind.MERGED
    assert again.fault_id == first.fault_id
    assert again.status == FaultStatus.OPEN
    assert len(engine.active_faults()) == 1


def test_the_same_report_id_twice_is_one_report(engine):
    first = engine.ingest(call("dup", "m1-2"))
    second = engine.ingest(call("dup", "m1-2", 1))
    assert second is first
    assert engine.faults[first.fault_id].report_ids == ["dup"]


def test_only_me_caller_with_quiet_neighbours_gets_self_check_guidance(engine):
    answer = engine.ingest(call("r1", "m3-4", scope=Scope.ONLY_ME))
    assert answer.kind == AnswerKind.CUSTOMER_SIDE
    assert any("RCD" in line for line in answer.guidance)
    assert any("main breaker" in line for line in answer.guidance)
    assert answer.paid_electrician == PAID_ELECTRICIAN_OFFER
    assert engine.active_faults() == []


def test_an_early_only_me_caller_is_promoted_when_neighbours_report_too(engine):
    lone = engine.ingest(call("r1", "m3-4", scope=Scope.ONLY_ME))
    assert lone.kind == AnswerKind.CUSTOMER_SIDE
    engine.ingest(call("r2", "m3-6", 4, scope=Scope.MY_BUILDING))
    engine.ingest(call("r3", "m3-9", 6))
    [fault] = engine.active_faults()
    assert device_of(engine, fault.fault_id) == "T3"
    assert "r1" in fault.report_ids
    assert any(u.report_id == "r1" and u.kind == AnswerKind.MERGED for u in engine.updates)


def test_a_lone_caller_whose_neighbours_stay_quiet_is_judged_customer_side(engine):
    answer = engine.ingest(call("r1", "m1-5", scope=None))
    assert answer.kind == AnswerKind.NEW_FAULT
    engine.advance(T0 + 45 * 60)  # the window passes; nobody else under T1 spoke up
    assert engine.active_faults() == []
    assert engine.faults[answer.fault_id].status == FaultStatus.CUSTOMER_SIDE
    [update] = engine.updates
    assert update.report_id == "r1" and update.kind == AnswerKind.CUSTOMER_SIDE
    assert update.guidance


def test_a_lone_caller_is_kept_when_a_neighbour_reports_within_the_window(engine):
    engine.ingest(call("r1", "m1-5", scope=None))
    engine.ingest(call("r2", "m1-1", 20, scope=None))
    engine.advance(T0 + 90 * 60)
    [fault] = engine.active_faults()
    assert device_of(engine, fault.fault_id) == "T1"


def test_two_neighbours_out_stay_a_grid_fault_though_one_thinks_it_is_only_them(engine):
    # One outage caller in twenty says "only me"; two homes on one cable failing inside
    # their own installations within the hour is far rarer.
    engine.ingest(call("r1", "m1-5", scope=Scope.ONLY_ME))
    engine.ingest(call("r2", "m1-1", 10, scope=None))
    engine.advance(T0 + 90 * 60)
    [fault] = engine.active_faults()
    assert device_of(engine, fault.fault_id) == "T1" and fault.status == FaultStatus.OPEN
    assert sorted(fault.report_ids) == ["r1", "r2"]


def test_transformers_out_under_a_fuse_roll_up_to_the_fuse(engine):
    meters = ["m1-0", "m1-3", "m1-6", "m2-2", "m2-5", "m2-9", "m3-1", "m3-4", "m3-8"]
    answers = [engine.ingest(call(f"r{k}", m, k)) for k, m in enumerate(meters)]
    [fault] = engine.active_faults()
    assert device_of(engine, fault.fault_id) == "F1"
    assert engine.customer_count(fault) == 30
    # Early callers under T2 may have opened their own fault first; it is merged since.
    for a in answers:
        assert a.fault_id == fault.fault_id or engine.faults[a.fault_id].merged_into == (
            fault.fault_id
        )


def test_a_busy_transformer_and_one_stray_call_next_door_stay_a_transformer_fault(engine):
    for k in range(8):
        engine.ingest(gasp(f"g{k}", f"m1-{k}", 1) if k < 5 else call(f"c{k}", f"m1-{k}", 9))
    engine.ingest(call("stray", "m2-4", 12, scope=None))
    assert "F1" not in {device_of(engine, f.fault_id) for f in engine.active_faults()}
    engine.advance(T0 + 2 * 3600)  # nobody else under T2 ever reports
    assert [device_of(engine, f.fault_id) for f in engine.active_faults()] == ["T1"]


def test_a_scada_breaker_trip_settles_the_breaker_at_once(engine):
    answer = engine.ingest(call("s1", "B", channel=Channel.SCADA_TRIP, scope=None))
    assert answer.kind == AnswerKind.NEW_FAULT
    assert device_of(engine, answer.fault_id) == "B"
    caller = engine.ingest(call("r1", "m4-3", 10))
    assert caller.kind == AnswerKind.MERGED and caller.fault_id == answer.fault_id
    assert engine.confidence(engine.faults[answer.fault_id]) >= 0.95


def test_an_ami_last_gasp_confirms_its_transformer(engine):
    answer = engine.ingest(gasp("g1", "m4-7"))
    assert answer.kind == AnswerKind.NEW_FAULT
    assert device_of(engine, answer.fault_id) == "T4"
    engine.advance(T0 + 3 * 3600)
    assert engine.faults[answer.fault_id].status == FaultStatus.OPEN  # not judged customer-side


def test_faults_carry_customers_critical_customers_area_and_first_report_time(engine):
    for k in range(4):
        engine.ingest(call(f"r{k}", f"m4-{k + 2}", 10 - k))
    [fault] = engine.active_faults()
    summary = engine.fault_summary(fault)
    assert summary["device_id"] == "T4"
    assert summary["customers"] == 10
    assert summary["critical_customers"] == ["m4-0"]
    assert fault.first_report_time == pytest.approx(T0 + 7 * 60)
    area = engine.outage_area(fault)
    assert isinstance(area, shapely.Geometry) and not area.is_empty


def test_power_back_restores_the_fault(engine):
    answer = engine.ingest(call("r1", "m1-0"))
    engine.ingest(call("r2", "m1-4", 2))
    back = engine.ingest(call("r3", "m1-4", 60, text="Power is back, thanks"))
    assert back.kind == AnswerKind.RESTORED
    fault = engine.faults[answer.fault_id]
    assert fault.status == FaultStatus.RESTORED
    assert fault.restored_time == pytest.approx(T0 + 3600)


def test_a_fuse_fault_inside_a_feeder_outage_stays_open_after_the_feeder_is_restored(engine):
    # Breaker trips; F2's area is also cut by its own blown fuse. All AMI meters gasp.
    engine.ingest(call("s1", "B", channel=Channel.SCADA_TRIP, scope=None))
    meters = [f"m{t}-{k}" for t in (1, 2, 3, 4) for k in range(0, 10, 2)]
    for k, m in enumerate(meters):
        engine.ingest(gasp(f"g{k}", m, 0.5))
    [feeder] = engine.active_faults()
    assert device_of(engine, feeder.fault_id) == "B"
    # The breaker recloses: meters outside F2 come back, F2's stay dark.
    for k, m in enumerate(m for m in meters if not m.startswith("m4")):
        engine.ingest(restore(f"back{k}", m, 60))
    engine.advance(T0 + 75 * 60)
    faults = {device_of(engine, f.fault_id): f for f in engine.active_faults()}
    assert faults["B"].status == FaultStatus.RESTORED
    nested = faults["T4"] if "T4" in faults else faults["F2"]
    assert nested.status == FaultStatus.OPEN
    late = engine.ingest(call("r9", "m4-5", 80))
    assert late.kind == AnswerKind.MERGED and late.fault_id == nested.fault_id


def test_a_still_dark_call_after_a_feeder_restoration_brings_back_its_areas_callers(engine):
    # F1 blows while T2's own fuse-way is also gone; T2's AMI backhaul is down, so only its
    # households' calls tell of it. T1 and T3 gasp.
    for k, m in enumerate(["m1-0", "m1-3", "m1-6", "m3-1", "m3-4", "m3-7"]):
        engine.ingest(gasp(f"g{k}", m, 0.5))
    for k, m in enumerate(["m2-1", "m2-4", "m2-8"]):
        engine.ingest(call(f"c{k}", m, 5 + k))
    [lateral] = engine.active_faults()
    assert device_of(engine, lateral.fault_id) == "F1"
    # F1 is re-fused: T1 and T3 come back; nothing is heard from T2 at that moment.
    for k, m in enumerate(["m1-0", "m1-3", "m1-6", "m3-1", "m3-4", "m3-7"]):
        engine.ingest(restore(f"back{k}", m, 60))
    engine.advance(T0 + 70 * 60)
    assert engine.faults[lateral.fault_id].status == FaultStatus.RESTORED
    assert [f.fault_id for f in engine.active_faults() if f.status == "open"] == []
    # One of T2's callers rings again: the street is still dark.
    again = engine.ingest(call("c9", "m2-4", 80, text="still no power"))
    nested = engine.faults[again.fault_id]
    assert device_of(engine, nested.fault_id) == "T2" and nested.status == FaultStatus.OPEN
    assert {"c0", "c1", "c2", "c9"} <= set(nested.report_ids)
    engine.flush()
    assert nested.status == FaultStatus.OPEN  # three households: not a lone caller


def test_a_call_from_a_cable_proven_live_after_a_restoration_does_not_reopen_it(engine):
    for k, m in enumerate(["m1-0", "m1-3", "m2-1", "m2-4", "m3-1", "m3-4"]):
        engine.ingest(call(f"c{k}", m, 5 + k))
    [lateral] = engine.active_faults()
    assert device_of(engine, lateral.fault_id) == "F1"
    for k, m in enumerate(["m1-0", "m2-1", "m3-1"]):
        engine.ingest(restore(f"back{k}", m, 60 + k))
    late = engine.ingest(call("c9", "m2-4", 80, scope=Scope.ONLY_ME))
    assert late.kind == AnswerKind.CUSTOMER_SIDE
    assert [f for f in engine.active_faults() if f.status == "open"] == []


def test_reports_inside_a_planned_outage_are_answered_with_its_window(engine):
    covered = engine.announce_planned(
        PlannedOutage("P1", T0, T0 + 4 * 3600, device_ids=("F2",), reason="cable works")
    )
    assert covered == 10
    answer = engine.ingest(call("r1", "m4-5", 30))
    assert answer.kind == AnswerKind.PLANNED_OUTAGE
    assert answer.window == (T0, T0 + 4 * 3600) and answer.planned_id == "P1"
    assert engine.active_faults() == []
    after = engine.ingest(call("r2", "m4-5", 5 * 60))
    assert after.kind != AnswerKind.PLANNED_OUTAGE


def test_planned_outage_by_area_polygon(engine, topology):
    grid = topology.grid
    ids = [grid.index[f"m2-{k}"] for k in range(10)]
    hull = shapely.convex_hull(shapely.multipoints([(grid.lon[i], grid.lat[i]) for i in ids]))
    covered = engine.announce_planned(PlannedOutage("P2", T0, T0 + 3600, area=hull.buffer(1e-4)))
    assert covered == 10
    assert engine.ingest(call("r1", "m2-3", 10)).kind == AnswerKind.PLANNED_OUTAGE


def test_unknown_ids_and_fixes_outside_the_service_area_are_rejected_with_a_reason(engine):
    unknown = engine.ingest(call("r1", "no-such-meter"))
    assert unknown.kind == AnswerKind.REJECTED and "no-such-meter" in unknown.reason
    far = engine.ingest(call("r2", None, lon=115.5, lat=31.5))
    assert far.kind == AnswerKind.REJECTED and "outside the service area" in far.reason
    device = engine.ingest(call("r3", "F1"))
    assert device.kind == AnswerKind.REJECTED and "not a meter" in device.reason
    good = engine.ingest(call("r4", "m1-1"))
    assert good.kind == AnswerKind.NEW_FAULT


def test_customer_ids_resolve_like_meter_ids(engine):
    answer = engine.ingest(call("r1", "C305"))
    assert answer.meter_id == "m3-5"


def test_a_household_judged_customer_side_calling_again_gets_the_same_guidance(engine):
    engine.ingest(call("r1", "m2-5", scope=None))
    engine.advance(T0 + 45 * 60)
    again = engine.ingest(call("r2", "m2-5", 50, scope=Scope.NEIGHBOURHOOD))
    assert again.kind == AnswerKind.CUSTOMER_SIDE
    assert engine.active_faults() == []


def test_a_repeat_caller_hears_the_eta_dispatch_has_set(engine):
    first = engine.ingest(call("r1", "m4-1"))
    engine.ingest(call("r2", "m4-2", 1))
    engine.faults[first.fault_id].eta = T0 + 2 * 3600
    again = engine.ingest(call("r3", "m4-1", 30))
    assert again.kind == AnswerKind.MERGED and again.eta == T0 + 2 * 3600


def test_answers_serialise_for_the_outside_world(engine):
    answer = engine.ingest(call("r1", "m3-2", scope=Scope.ONLY_ME))
    data = answer.as_dict()
    assert data["answer"] == "customer_side" and data["report_id"] == "r1"
    assert data["guidance"] and data["paid_electrician"]


def test_a_live_neighbour_meter_turns_a_lone_callers_fault_customer_side(engine):
    answer = engine.ingest(call("r1", "m3-2", scope=None))
    assert answer.kind == AnswerKind.NEW_FAULT
    engine.ingest(restore("alive", "m3-7", 3))  # a neighbour's meter reports supply
    assert engine.active_faults() == []
    assert engine.faults[answer.fault_id].status == FaultStatus.CUSTOMER_SIDE
    assert [u.report_id for u in engine.updates] == ["r1"]


def test_a_breaker_feeding_just_two_fuses_is_blamed_when_both_go_dark_together(engine):
    # B has only two parts (F1 and F2): it cannot have three reporting parts, but both
    # laterals losing supply in the same minute is one breaker outage, not two fuse faults.
    meters = ["m1-0", "m1-5", "m2-3", "m2-7", "m3-2", "m3-6", "m4-1", "m4-4", "m4-8"]
    for k, meter in enumerate(meters):
        engine.ingest(gasp(f"g{k}", meter, 1 + k / 60))
    assert [device_of(engine, f.fault_id) for f in engine.active_faults()] == ["B"]


def test_a_flicker_call_is_no_outage_but_flickered_then_went_out_is(engine):
    flicker = engine.ingest(call("f1", "m1-2", scope=None, text="Lights flickered"))
    assert flicker.kind == AnswerKind.REJECTED and "flicker" in (flicker.reason or "")
    engine.ingest(call("f2", "m1-6", 2, scope=None, text="lights flickered"))
    assert engine.active_faults() == []
    outage = engine.ingest(call("o1", "m1-8", 4, text="lights flickered, then went out"))
    assert outage.kind == AnswerKind.NEW_FAULT
    assert [device_of(engine, f.fault_id) for f in engine.active_faults()] == ["T1"]
