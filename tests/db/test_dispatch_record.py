"""The dispatch record: faults with member reports, work orders with a numbered event log,
crews and their GPS tracks, planned outages and escalations — what a restarted engine
reloads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import shapely

from gridmend.db.session import Database
from gridmend.dispatch.models import WorkOrderState
from gridmend.dispatch.repository import (
    CrewBusy,
    CrewSpec,
    FaultState,
    GpsFix,
    IncomingReport,
    Step,
    UnknownFault,
    WorkOrderFinished,
    add_fault_members,
    all_crews,
    assign_crew,
    cancel_planned_outage,
    create_work_order,
    crew_track,
    current_planned_outages,
    fault_report_ids,
    get_fault,
    get_work_order,
    load_restart_state,
    merge_faults,
    open_escalations,
    open_faults,
    open_work_orders,
    record_crew_fixes,
    record_escalation,
    record_reports,
    record_work_order_event,
    resolve_escalation,
    save_answer,
    save_crew,
    save_fault,
    save_planned_outage,
)
from tests.db.conftest import Backend

T0 = datetime(2026, 7, 14, 18, 0, tzinfo=UTC)
AREA = shapely.box(7.90, 48.47, 7.91, 48.48)


def reports(db: Database, *ids: str) -> None:
    with db.unit_of_work() as session:
        record_reports(session, [IncomingReport(report_id=r, payload={"id": r}) for r in ids])


def fault(fault_id: str, device: str = "F1", status: str = "open") -> FaultState:
    return FaultState(
        id=fault_id,
        suspected_device=device,
        status=status,
        confidence=0.8,
        customer_count=120,
        critical_count=1,
        area=AREA,
        first_report_at=T0,
        eta=T0 + timedelta(minutes=45),
    )


def test_a_fault_keeps_its_member_reports_and_area(database: Database) -> None:
    reports(database, "R1", "R2", "R3")
    with database.unit_of_work() as session:
        save_fault(session, fault("FLT-1"))
        assert add_fault_members(session, "FLT-1", ["R1", "R2"]) == 2
        assert add_fault_members(session, "FLT-1", ["R2", "R3"]) == 1  # R2 already a member
    with database.unit_of_work() as session:
        stored = get_fault(session, "FLT-1")
        assert len(stored.members) == 3
        assert stored.area.equals(AREA) and stored.eta == T0 + timedelta(minutes=45)
        assert fault_report_ids(session, "FLT-1") == ["R1", "R2", "R3"]
    with database.unit_of_work() as session, pytest.raises(UnknownFault):
        add_fault_members(session, "FLT-404", ["R1"])


def test_merging_moves_members_and_closes_the_absorbed_fault(database: Database) -> None:
    reports(database, "R1", "R2", "R3")
    with database.unit_of_work() as session:
        save_fault(session, fault("FLT-A", "F1"))
        save_fault(session, fault("FLT-B", "CB1"))
        add_fault_members(session, "FLT-A", ["R1", "R2"])
        add_fault_members(session, "FLT-B", ["R3"])
        merge_faults(session, "FLT-A", "FLT-B")
    with database.unit_of_work() as session:
        assert [f.id for f in open_faults(session)] == ["FLT-B"]
        assert fault_report_ids(session, "FLT-B") == ["R1", "R2", "R3"]
        assert get_fault(session, "FLT-A").merged_into == "FLT-B"


def test_a_work_order_log_is_numbered_without_gaps_and_ends_when_closed(
    database: Database,
) -> None:
    reports(database, "R1")
    with database.unit_of_work() as session:
        save_fault(session, fault("FLT-1"))
        save_crew(session, CrewSpec(id="crew-7", staff_number="S-0007", skills=("mv",)))
        create_work_order(session, "WO-1", "FLT-1", Step(actor="engine", at=T0))
    walk = [
        WorkOrderState.ASSIGNED,
        WorkOrderState.ACCEPTED,
        WorkOrderState.EN_ROUTE,
        WorkOrderState.ARRIVED,
        WorkOrderState.DIAGNOSING,
        WorkOrderState.REPAIRING,
        WorkOrderState.RESTORED,
    ]
    for minute, state in enumerate(walk, start=1):
        with database.unit_of_work() as session:
            record_work_order_event(
                session,
                "WO-1",
                state,
                Step(actor="crew-7", at=T0 + timedelta(minutes=minute), lon=7.9, lat=48.47),
                crew_id="crew-7" if state == WorkOrderState.ASSIGNED else None,
            )
    with database.unit_of_work() as session:
        assert [o.id for o in open_work_orders(session)] == ["WO-1"]
        record_work_order_event(session, "WO-1", "closed", Step(actor="dispatcher"))
    with database.unit_of_work() as session:
        order = get_work_order(session, "WO-1")
        assert [e.seq for e in order.events] == list(range(1, 10))
        assert [e.state for e in order.events] == ["created", *walk, "closed"]
        assert order.crew_id == "crew-7" and order.state == "closed"
        assert open_work_orders(session) == []
        with pytest.raises(WorkOrderFinished) as err:
            record_work_order_event(session, "WO-1", "repairing", Step(actor="crew-7"))
        assert err.value.status_code == 409


def test_two_workers_appending_to_one_work_order_get_distinct_sequence_numbers(
    database: Database,
) -> None:
    reports(database, "R1")
    with database.unit_of_work() as session:
        save_fault(session, fault("FLT-1"))
        create_work_order(session, "WO-1", "FLT-1", Step(actor="engine", at=T0))
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for _ in range(15):
                with database.unit_of_work() as session:
                    record_work_order_event(session, "WO-1", "diagnosing", Step(actor=name))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with database.unit_of_work() as session:
        order = get_work_order(session, "WO-1")
        assert [e.seq for e in order.events] == list(range(1, 32))
        assert order.last_seq == 31


def test_a_crew_track_grows_and_its_last_fix_only_moves_forward(database: Database) -> None:
    with database.unit_of_work() as session:
        save_crew(
            session,
            CrewSpec(
                id="crew-1",
                staff_number="S-1",
                members=("Anna", "Ben"),
                vehicle="OG-GM 101",
                depot_lon=7.94,
                depot_lat=48.47,
                shift_start=T0,
                shift_end=T0 + timedelta(hours=8),
            ),
        )
        record_crew_fixes(
            session,
            "crew-1",
            [GpsFix(T0 + timedelta(minutes=m), 7.94 - m * 1e-3, 48.47) for m in range(5)],
        )
        record_crew_fixes(session, "crew-1", [GpsFix(T0 - timedelta(minutes=1), 7.0, 48.0)])
    with database.unit_of_work() as session:
        (crew,) = all_crews(session)
        assert crew.last_fix_at == T0 + timedelta(minutes=4)
        assert crew.position.equals(shapely.Point(7.94 - 4e-3, 48.47))
        assert crew.depot.equals(shapely.Point(7.94, 48.47)) and crew.members == ["Anna", "Ben"]
        assert len(crew_track(session, "crew-1")) == 6
        assert len(crew_track(session, "crew-1", since=T0 + timedelta(minutes=3))) == 2


def test_planned_outages_are_current_until_they_end_or_are_cancelled(database: Database) -> None:
    with database.unit_of_work() as session:
        save_planned_outage(
            session,
            "PO-1",
            devices=["F1"],
            starts_at=T0,
            ends_at=T0 + timedelta(hours=2),
            area=AREA,
        )
        save_planned_outage(
            session, "PO-2", devices=["T2"], starts_at=T0, ends_at=T0 + timedelta(hours=4)
        )
        with pytest.raises(ValueError):
            save_planned_outage(session, "PO-3", devices=[], starts_at=T0, ends_at=T0)
    with database.unit_of_work() as session:
        current = current_planned_outages(session, T0 + timedelta(hours=1))
        assert [o.id for o in current] == ["PO-1", "PO-2"] and current[0].area.equals(AREA)
        assert [o.id for o in current_planned_outages(session, T0 + timedelta(hours=3))] == ["PO-2"]
        cancel_planned_outage(session, "PO-2")
    with database.unit_of_work() as session:
        assert current_planned_outages(session, T0 + timedelta(hours=3)) == []


def test_escalations_stay_open_until_resolved(database: Database) -> None:
    reports(database, "R1")
    with database.unit_of_work() as session:
        save_fault(session, fault("FLT-1"))
        first = record_escalation(session, "arrival promise missed", fault_id="FLT-1", at=T0)
        record_escalation(session, "hospital unattended", level=2, fault_id="FLT-1", at=T0)
    with database.unit_of_work() as session:
        assert len(open_escalations(session)) == 2
        resolve_escalation(session, first.id)
    with database.unit_of_work() as session:
        assert [e.reason for e in open_escalations(session)] == ["hospital unattended"]


def test_a_restarted_process_reads_back_everything_the_engine_had(backend: Backend) -> None:
    from gridmend.db.migrate import upgrade

    before = backend.open()
    upgrade(before.engine)
    reports(before, "R1", "R2", "R3", "R4")
    with before.unit_of_work() as session:
        save_fault(session, fault("FLT-1"))
        save_fault(session, fault("FLT-OLD", status="withdrawn"))
        add_fault_members(session, "FLT-1", ["R1", "R2"])
        save_answer(session, "R1", {"kind": "fault"}, fault_id="FLT-1")
        save_answer(session, "R2", {"kind": "fault"}, fault_id="FLT-1")
        save_crew(session, CrewSpec(id="crew-1", staff_number="S-1"))
        record_crew_fixes(session, "crew-1", [GpsFix(T0, 7.93, 48.47)])
        create_work_order(session, "WO-1", "FLT-1", Step(actor="engine", at=T0))
        record_work_order_event(session, "WO-1", "assigned", Step(actor="engine"), crew_id="crew-1")
        save_planned_outage(
            session, "PO-1", devices=["T2"], starts_at=T0, ends_at=T0 + timedelta(hours=3)
        )
        record_escalation(session, "hospital unattended", fault_id="FLT-1", at=T0)
    before.dispose()  # the process dies

    after = backend.open()
    with after.unit_of_work() as session:
        state = load_restart_state(session, now=T0 + timedelta(hours=1))
        assert [f.id for f in state.open_faults] == ["FLT-1"]
        assert state.fault_reports == {"FLT-1": ["R1", "R2"]}
        (order,) = state.open_work_orders
        assert (order.state, order.crew_id, [e.seq for e in order.events]) == (
            "assigned",
            "crew-1",
            [1, 2],
        )
        assert state.crews[0].position.equals(shapely.Point(7.93, 48.47))
        assert [o.id for o in state.planned_outages] == ["PO-1"]
        assert [r.report_id for r in state.awaiting_inference] == ["R3", "R4"]
        assert [e.reason for e in state.open_escalations] == ["hospital unattended"]
    after.dispose()


def test_two_workers_assigning_one_crew_at_once_give_it_one_work_order(
    database: Database,
) -> None:
    reports(database, "R1")
    with database.unit_of_work() as session:
        save_fault(session, fault("FLT-1"))
        save_fault(session, fault("FLT-2", device="T2"))
        save_crew(session, CrewSpec(id="crew-1", staff_number="S-1"))
        create_work_order(session, "WO-1", "FLT-1", Step(actor="engine", at=T0))
        create_work_order(session, "WO-2", "FLT-2", Step(actor="engine", at=T0))
    outcome: list[str] = []

    def second_worker() -> None:
        try:
            with database.unit_of_work() as session:
                assign_crew(session, "WO-2", "crew-1", Step(actor="worker-2"))
            outcome.append("assigned")
        except CrewBusy as err:
            outcome.append(f"busy {err.status_code}")

    first = database.sessions()
    try:
        assign_crew(first, "WO-1", "crew-1", Step(actor="worker-1"))  # not committed yet
        racer = threading.Thread(target=second_worker)
        racer.start()
        racer.join(timeout=0.5)  # give it time to reach the crew lock and wait there
        first.commit()
    finally:
        first.close()
    racer.join()
    assert outcome == ["busy 409"]
    with database.unit_of_work() as session:
        assert [(o.id, o.crew_id) for o in open_work_orders(session)] == [
            ("WO-1", "crew-1"),
            ("WO-2", None),
        ]
        record_work_order_event(session, "WO-1", "restored", Step(actor="crew-1"))
        assign_crew(session, "WO-2", "crew-1", Step(actor="engine"))  # free again once restored
