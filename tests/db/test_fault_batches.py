"""One engine step's faults and members in a few batch statements: the same rows as the
one-fault-at-a-time calls, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import shapely
from sqlalchemy import event, select

from gridmend.db.session import Database
from gridmend.dispatch.models import Fault, FaultMember, Report
from gridmend.dispatch.repository import (
    FaultState,
    IncomingReport,
    UnknownFault,
    UnknownReport,
    add_fault_members,
    add_fault_members_many,
    fault_report_ids,
    get_fault,
    record_reports,
    save_fault,
    save_faults,
)

T0 = datetime(2026, 7, 14, 18, 0, tzinfo=UTC)
AREA = shapely.box(7.90, 48.47, 7.91, 48.48)


def reports(db: Database, *ids: str) -> None:
    with db.unit_of_work() as session:
        record_reports(session, [IncomingReport(report_id=r, payload={"id": r}) for r in ids])


def state(fault_id: str, status: str = "open", customers: int = 120) -> FaultState:
    return FaultState(
        id=fault_id,
        suspected_device="F1",
        status=status,
        confidence=0.8,
        customer_count=customers,
        critical_count=1,
        area=AREA if status == "open" else None,
        first_report_at=T0,
        eta=T0 + timedelta(minutes=45),
    )


def stored(db: Database) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Faults, members and each report's fault, as plain rows."""
    with db.unit_of_work() as session:
        faults = [
            (f.id, f.status, f.customer_count, f.area.wkb if f.area is not None else None, f.eta)
            for f in session.scalars(select(Fault).order_by(Fault.id))
        ]
        members = session.execute(
            select(FaultMember.fault_id, Report.report_id)
            .join(Report, Report.id == FaultMember.report_pk)
            .order_by(FaultMember.fault_id, Report.report_id)
        ).all()
        owners = session.execute(
            select(Report.report_id, Report.fault_id).order_by(Report.report_id)
        ).all()
    return faults, [tuple(m) for m in members], [tuple(o) for o in owners]


def test_a_step_of_new_and_known_faults_is_saved_in_one_call(database: Database) -> None:
    reports(database, "R1", "R2", "R3", "R4")
    with database.unit_of_work() as session:
        save_faults(session, [state("FLT-1")])
        add_fault_members_many(session, [("FLT-1", ["R1", "R2"])])
    with database.unit_of_work() as session:
        save_faults(session, [state("FLT-1", "confirmed", 300), state("FLT-2")])
        add_fault_members_many(session, [("FLT-1", ["R2", "R3"]), ("FLT-2", ["R4", "R4"])])
    with database.unit_of_work() as session:
        one, two = get_fault(session, "FLT-1"), get_fault(session, "FLT-2")
        assert (one.status, one.customer_count, one.area) == ("confirmed", 300, None)
        assert two.area.equals(AREA) and two.eta == T0 + timedelta(minutes=45)
        assert fault_report_ids(session, "FLT-1") == ["R1", "R2", "R3"]
        assert fault_report_ids(session, "FLT-2") == ["R4"]


def test_the_batch_leaves_the_rows_the_single_calls_leave(database: Database) -> None:
    """Including a report that moves on to a later fault in the same step (last one wins)."""
    reports(database, "R1", "R2", "R3")
    steps = [
        ([state("FLT-A"), state("FLT-B")], [("FLT-A", ["R1", "R2"]), ("FLT-B", ["R3"])]),
        ([state("FLT-A", "merged"), state("FLT-B", customers=200)], [("FLT-B", ["R1", "R2"])]),
    ]
    for faults, members in steps:
        with database.unit_of_work() as session:
            for s in faults:
                save_fault(session, s)
            for fault_id, ids in members:
                add_fault_members(session, fault_id, ids, at=T0)
    single = stored(database)
    with database.unit_of_work() as session:
        session.execute(Report.__table__.update().values(fault_id=None))
        session.execute(FaultMember.__table__.delete())
        session.execute(Fault.__table__.delete())
    for faults, members in steps:
        with database.unit_of_work() as session:
            save_faults(session, faults)
            add_fault_members_many(session, members, at=T0)
    assert stored(database) == single
    assert ("R1", "FLT-B") in single[2]


def test_a_step_costs_a_few_statements_whatever_the_number_of_faults(
    database: Database,
) -> None:
    ids = [f"R{i}" for i in range(300)]
    reports(database, *ids)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        with database.unit_of_work() as session:
            save_faults(session, [state(f"FLT-{i}") for i in range(100)])
            add_fault_members_many(
                session, [(f"FLT-{i}", ids[3 * i : 3 * i + 3]) for i in range(100)]
            )
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    work = [s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "SELECT 1"))]
    assert len(work) <= 8, work


def test_unknown_faults_and_reports_are_refused(database: Database) -> None:
    reports(database, "R1")
    with database.unit_of_work() as session, pytest.raises(UnknownFault):
        add_fault_members_many(session, [("FLT-404", ["R1"])])
    with database.unit_of_work() as session:
        save_faults(session, [state("FLT-1")])
    with database.unit_of_work() as session, pytest.raises(UnknownReport):
        add_fault_members_many(session, [("FLT-1", ["R1", "R-404"])])
    with database.unit_of_work() as session:
        assert fault_report_ids(session, "FLT-1") == []
