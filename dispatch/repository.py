"""The dispatch record in the database: write-ahead report intake, faults and their member
reports, work orders and their event log, crews and GPS tracks, planned outages, escalations.

All dispatch SQL lives here. Functions take the caller's session and never commit: the
request or task boundary commits (see :func:`gridmend.db.session.unit_of_work`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import String, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from gridmend.db.dialects import insert_for, is_postgresql
from gridmend.db.errors import Conflict, NotFound
from gridmend.db.types import SRID, utcnow
from gridmend.dispatch.inference import FaultStatus
from gridmend.dispatch.lifecycle import CREW_STATES
from gridmend.dispatch.models import (
    FINAL_WORK_ORDER_STATES,
    OPEN_FAULT_STATUSES,
    Crew,
    CrewPosition,
    Escalation,
    Fault,
    FaultMember,
    PlannedOutage,
    Report,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderState,
)

#: Rows per INSERT statement in batch intake (well under SQLite's bound-parameter limit).
BATCH_ROWS = 500
#: PostgreSQL advisory lock key under which batch intakes take turns ("gridmend" in ASCII).
BATCH_INTAKE_LOCK = 0x6772_6964_6D65_6E64


class UnknownReport(NotFound):
    """No report with this client report id has been received."""


class UnknownFault(NotFound):
    """No fault with this id."""


class UnknownWorkOrder(NotFound):
    """No work order with this id."""


class UnknownCrew(NotFound):
    """No crew with this id."""


class WorkOrderFinished(Conflict):
    """The work order is closed, cancelled or merged and takes no further events."""


class CrewBusy(Conflict):
    """The crew is already committed to another open work order."""


# ---------------------------------------------------------------------------------- intake
@dataclass(frozen=True)
class IncomingReport:
    """A report as received, before any inference: what intake writes ahead."""

    report_id: str
    payload: dict[str, Any]
    reported_at: datetime | None = None
    channel: str | None = None
    meter_id: str | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str | None = None
    scope: str | None = None
    text: str | None = None
    contact: str | None = None
    callback_url: str | None = None
    received_at: datetime | None = None

    @classmethod
    def of(
        cls,
        report: Any,
        payload: dict[str, Any] | None = None,
        *,
        callback_url: str | None = None,
        received_at: datetime | None = None,
    ) -> IncomingReport:
        """From the engine's report object (``gridmend.dispatch.reports.Report``)."""
        time = getattr(report, "time", None)
        scope = getattr(report, "scope", None)
        channel = getattr(report, "channel", None)
        raw = payload if payload is not None else _report_payload(report)
        return cls(
            report_id=report.report_id,
            payload=raw,
            reported_at=datetime.fromtimestamp(time, UTC) if time is not None else None,
            channel=str(channel) if channel is not None else None,
            meter_id=getattr(report, "meter_id", None),
            lon=getattr(report, "lon", None),
            lat=getattr(report, "lat", None),
            crs=getattr(report, "crs", None),
            scope=str(scope) if scope is not None else None,
            text=getattr(report, "text", None) or None,
            contact=getattr(report, "contact", None) or None,
            callback_url=callback_url,
            received_at=received_at,
        )

    def row(self, now: datetime) -> dict[str, Any]:
        if not self.report_id:
            raise ValueError("report_id: empty")
        point = (
            shapely.Point(self.lon, self.lat)
            if self.lon is not None and self.lat is not None
            else None
        )
        for name in _BOUNDED_TEXT:
            value = getattr(self, name)
            if value is not None and len(value) > _BOUNDED_TEXT[name]:
                raise ValueError(f"{name}: longer than {_BOUNDED_TEXT[name]} characters")
        return {
            "report_id": self.report_id,
            "received_at": self.received_at or now,
            "reported_at": self.reported_at,
            "channel": self.channel,
            "meter_id": self.meter_id,
            "lon": self.lon,
            "lat": self.lat,
            "crs": self.crs,
            "scope": self.scope,
            "text": self.text,
            "contact": self.contact,
            "callback_url": self.callback_url,
            "payload": self.payload,
            "geom": point,
        }


#: Report fields stored in bounded columns, with their limits (PostgreSQL enforces them).
_BOUNDED_TEXT: dict[str, int] = {
    column.name: column.type.length
    for column in Report.__table__.columns
    if isinstance(column.type, String)
    and column.type.length
    and column.name in IncomingReport.__dataclass_fields__
}


def _report_payload(report: Any) -> dict[str, Any]:
    fields = ("report_id", "time", "channel", "meter_id", "lon", "lat", "crs", "scope", "text")
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(report, name, None)
        out[name] = str(value) if name in ("channel", "scope") and value is not None else value
    return out


@dataclass(frozen=True)
class StoredReport:
    """A report as the database holds it after intake.

    ``created`` is False when the client report id was already stored: ``answer`` is then the
    first answer given (None while the first request is still being inferred).
    """

    pk: int
    report_id: str
    received_at: datetime
    answer: dict[str, Any] | None
    fault_id: str | None
    created: bool


_STORED_COLUMNS = (
    Report.id,
    Report.report_id,
    Report.received_at,
    Report.answer,
    Report.fault_id,
)


def record_report(
    session: Session, report: IncomingReport, now: datetime | None = None
) -> StoredReport:
    """Store a report write-ahead, once per client report id; the caller commits before
    acknowledging.

    Uses ``INSERT … ON CONFLICT DO NOTHING`` then reads the row back, so a repeat — in this
    process, after a restart, or racing in another worker — gets the stored row, never a
    duplicate and never an error.
    """
    statement = (
        insert_for(session, Report)
        .values(report.row(now or utcnow()))
        .on_conflict_do_nothing(index_elements=["report_id"])
        .returning(Report.id)
    )
    inserted = session.execute(statement).scalar_one_or_none()
    row = session.execute(
        select(*_STORED_COLUMNS).where(Report.report_id == report.report_id)
    ).one()
    return StoredReport(*row, created=inserted is not None)


#: The report columns batch intake writes (``geom`` follows from ``lon``/``lat``).
_INTAKE_COLUMNS = (
    "report_id",
    "received_at",
    "reported_at",
    "channel",
    "meter_id",
    "lon",
    "lat",
    "crs",
    "scope",
    "text",
    "contact",
    "callback_url",
    "payload",
)


def _sqlite_batch_insert() -> Any:
    """SQLite: an executemany of one cached statement (SQLAlchemy sends it as
    "insertmanyvalues", a few multi-row INSERTs), returning the stored columns of the rows
    it created."""
    return (
        sqlite.insert(Report.__table__)
        .on_conflict_do_nothing(index_elements=["report_id"])
        .returning(*_STORED_COLUMNS)
    )


def _postgresql_batch_insert() -> Any:
    """PostgreSQL: one ``INSERT … SELECT … FROM unnest(<one array per column>) WITH
    ORDINALITY`` — thirteen parameters whatever the batch size, so the statement text is
    compiled, parsed and prepared once, instead of a multi-row VALUES of thousands of
    placeholders that the driver would parse again at every batch. Rows are inserted in
    input order; the point geometry is built server-side from ``lon``/``lat`` (NULL if
    either is missing, as :meth:`IncomingReport.row` does)."""
    table = Report.__table__
    arrays = [
        bindparam(f"b_{name}", type_=postgresql.ARRAY(table.c[name].type))
        for name in _INTAKE_COLUMNS
    ]
    arrays[_INTAKE_COLUMNS.index("payload")] = bindparam(
        "b_payload", type_=postgresql.ARRAY(postgresql.JSONB())
    )
    rows = (
        func.unnest(*arrays)
        .table_valued(*_INTAKE_COLUMNS, with_ordinality="n")
        .render_derived(name="u")
    )
    point = func.ST_SetSRID(func.ST_MakePoint(rows.c.lon, rows.c.lat), SRID)
    source = select(*(rows.c[name] for name in _INTAKE_COLUMNS), point).order_by(rows.c.n)
    return (
        postgresql.insert(table)
        .from_select([*_INTAKE_COLUMNS, "geom"], source)
        .on_conflict_do_nothing(index_elements=["report_id"])
        .returning(*_STORED_COLUMNS)
    )


_BATCH_INSERT = {"postgresql": _postgresql_batch_insert(), "sqlite": _sqlite_batch_insert()}


def _insert_batch(session: Session, rows: list[dict[str, Any]]) -> Any:
    """Insert ``rows`` (from :meth:`IncomingReport.row`) unless stored; the created rows."""
    if is_postgresql(session):
        arrays = {f"b_{name}": [row[name] for row in rows] for name in _INTAKE_COLUMNS}
        return session.connection().execute(_BATCH_INSERT["postgresql"], arrays)
    return session.connection().execute(_BATCH_INSERT["sqlite"], rows)


def record_reports(
    session: Session, reports: Sequence[IncomingReport], now: datetime | None = None
) -> list[StoredReport]:
    """Batch intake: like :func:`record_report` for thousands at once, in input order.

    A report id repeated inside the batch, or already stored, is kept once (first wins); only
    the first occurrence of a newly stored id says ``created``. Rows are written in input
    order. On PostgreSQL concurrent batches take turns (a transaction-scoped advisory lock);
    take many reports in one transaction through this function, not through repeated
    :func:`record_report` calls, so they take turns too.

    The INSERT returns the rows it created; only ids it did not create (stored before) are
    read back.
    """
    now = now or utcnow()
    stored: dict[str, StoredReport] = {}
    first_of = {r.report_id: r for r in reversed(reports)}
    unique = list(first_of.values())[::-1]  # input order: the order the engine takes them
    if len(unique) > 1 and is_postgresql(session):
        # Two batches sharing ids in different orders would each wait on the other's
        # uncommitted rows (a deadlock); batches take turns instead, until their commit.
        session.execute(select(func.pg_advisory_xact_lock(BATCH_INTAKE_LOCK)))
    for start in range(0, len(unique), BATCH_ROWS):
        chunk = unique[start : start + BATCH_ROWS]
        for row in _insert_batch(session, [r.row(now) for r in chunk]):
            stored[row.report_id] = StoredReport(*row, created=True)
        earlier = [r.report_id for r in chunk if r.report_id not in stored]
        if earlier:
            for row in session.execute(
                select(*_STORED_COLUMNS).where(Report.report_id.in_(earlier))
            ):
                stored[row.report_id] = StoredReport(*row, created=False)
    out: list[StoredReport] = []
    seen: set[str] = set()
    for r in reports:
        first = stored[r.report_id]
        out.append(first if r.report_id not in seen else replace(first, created=False))
        seen.add(r.report_id)
    return out


def save_answer(
    session: Session,
    report_id: str,
    answer: dict[str, Any],
    *,
    resolved_meter: str | None = None,
    fault_id: str | None = None,
    inferred_at: datetime | None = None,
) -> bool:
    """Keep the engine's answer to a report; only the first answer is kept (True if stored)."""
    result = session.execute(
        update(Report)
        .where(Report.report_id == report_id, Report.answer.is_(None))
        .values(
            answer=answer,
            resolved_meter=resolved_meter,
            fault_id=fault_id,
            inferred_at=inferred_at or utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if (
        result.rowcount == 0
        and session.scalar(select(Report.id).where(Report.report_id == report_id)) is None
    ):
        raise UnknownReport(f"no report {report_id!r}")
    return result.rowcount == 1


def get_report(session: Session, report_id: str) -> Report:
    report = session.scalars(select(Report).where(Report.report_id == report_id)).first()
    if report is None:
        raise UnknownReport(f"no report {report_id!r}")
    return report


def reports_awaiting_inference(session: Session, limit: int | None = None) -> Sequence[Report]:
    """Accepted reports the engine has not answered yet, oldest first: replay after restart."""
    query = select(Report).where(Report.inferred_at.is_(None)).order_by(Report.id)
    return session.scalars(query.limit(limit) if limit else query).all()


# ---------------------------------------------------------------------------------- faults
@dataclass
class FaultState:
    """What the engine knows about a fault; :func:`save_fault` writes it."""

    id: str
    suspected_device: str
    status: str = FaultStatus.OPEN
    confidence: float = 0.0
    customer_count: int = 0
    critical_count: int = 0
    area: BaseGeometry | None = None
    first_report_at: datetime | None = None
    eta: datetime | None = None
    snapshot_id: int | None = None


#: The fault columns :class:`FaultState` carries (besides the id).
_FAULT_FIELDS = (
    "suspected_device",
    "status",
    "confidence",
    "customer_count",
    "critical_count",
    "area",
    "first_report_at",
    "eta",
    "snapshot_id",
)


def save_fault(session: Session, state: FaultState) -> Fault:
    """Insert or update a fault from the engine's view of it."""
    fault = session.get(Fault, state.id)
    if fault is None:
        fault = Fault(id=state.id)
        session.add(fault)
    for name in _FAULT_FIELDS:
        setattr(fault, name, getattr(state, name))
    session.flush()
    return fault


def save_faults(session: Session, states: Sequence[FaultState]) -> None:
    """Batch form of :func:`save_fault` for one engine step: which faults exist is asked
    once, then the new ones are inserted and the known ones updated, each as one
    executemany (SQLAlchemy's ORM bulk INSERT and bulk UPDATE by primary key).

    Bulk statements bypass the identity map: a :class:`Fault` already loaded in this
    session is not refreshed (the engine service writes through a fresh session).
    """
    rows = {s.id: {"id": s.id, **{n: getattr(s, n) for n in _FAULT_FIELDS}} for s in states}
    if not rows:
        return
    known = _existing_ids(session, Fault.id, list(rows))
    new = [row for fault_id, row in rows.items() if fault_id not in known]
    old = [row for fault_id, row in rows.items() if fault_id in known]
    if new:
        session.execute(insert(Fault), new)
    if old:
        session.execute(update(Fault), old)


def add_fault_members(
    session: Session, fault_id: str, report_ids: Iterable[str], at: datetime | None = None
) -> int:
    """Roll reports into a fault (idempotent); returns how many were new members."""
    return add_fault_members_many(session, [(fault_id, list(report_ids))], at)


def add_fault_members_many(
    session: Session, members: Sequence[tuple[str, Sequence[str]]], at: datetime | None = None
) -> int:
    """Batch form of :func:`add_fault_members` for one engine step: ``(fault_id,
    report_ids)`` pairs, applied in order (a report named twice ends up with the last
    fault's id, as repeated single calls would leave it), in four statements (per 500 ids)
    whatever the number of faults: faults checked, report keys looked up, members inserted
    (idempotent, executemany) and the reports' ``fault_id`` set (executemany by key).
    Returns how many were new members."""
    pairs = [(fault_id, rid) for fault_id, ids in members for rid in dict.fromkeys(ids)]
    fault_ids = list(dict.fromkeys(fault_id for fault_id, _ in members))
    missing_faults = set(fault_ids) - _existing_ids(session, Fault.id, fault_ids)
    if missing_faults:
        raise UnknownFault(f"no fault {sorted(missing_faults)[0]!r}")
    if not pairs:
        return 0
    pks = report_pks(session, [rid for _, rid in pairs])
    missing = list(dict.fromkeys(rid for _, rid in pairs if rid not in pks))
    if missing:
        raise UnknownReport(f"no report(s) {', '.join(map(repr, missing[:10]))}")
    at = at or utcnow()
    added = session.execute(
        insert_for(session, FaultMember)
        .on_conflict_do_nothing(index_elements=["fault_id", "report_pk"])
        .returning(FaultMember.report_pk),
        [{"fault_id": fault_id, "report_pk": pks[rid], "added_at": at} for fault_id, rid in pairs],
    ).all()
    last_fault = {pks[rid]: fault_id for fault_id, rid in pairs}  # later pairs win
    session.connection().execute(
        _SET_REPORT_FAULT,
        [{"b_pk": pk, "b_fault": fault_id} for pk, fault_id in last_fault.items()],
    )
    return len(added)


_SET_REPORT_FAULT = (
    update(Report.__table__)
    .where(Report.__table__.c.id == bindparam("b_pk"))
    .values(fault_id=bindparam("b_fault"))
)


def report_pks(session: Session, report_ids: Sequence[str]) -> dict[str, int]:
    """Client report id → primary key for those of ``report_ids`` that are stored."""
    ids = list(dict.fromkeys(report_ids))
    pks: dict[str, int] = {}
    for start in range(0, len(ids), BATCH_ROWS):
        chunk = ids[start : start + BATCH_ROWS]
        rows = session.execute(
            select(Report.report_id, Report.id).where(Report.report_id.in_(chunk))
        )
        pks.update({report_id: pk for report_id, pk in rows})
    return pks


def _existing_ids(session: Session, column: Any, ids: Sequence[Any]) -> set[Any]:
    """Those of ``ids`` present in the primary-key ``column``."""
    found: set[Any] = set()
    for start in range(0, len(ids), BATCH_ROWS):
        found.update(
            session.scalars(select(column).where(column.in_(ids[start : start + BATCH_ROWS])))
        )
    return found


def merge_faults(session: Session, absorbed_id: str, into_id: str) -> Fault:
    """One fault turned out to be part of another: move its members and mark it merged."""
    absorbed = session.get(Fault, absorbed_id, with_for_update=True)
    into = session.get(Fault, into_id, with_for_update=True)
    if absorbed is None or into is None:
        raise UnknownFault(f"no fault {absorbed_id if absorbed is None else into_id!r}")
    moved = session.scalars(
        select(Report.report_id)
        .join(FaultMember, FaultMember.report_pk == Report.id)
        .where(FaultMember.fault_id == absorbed_id)
    ).all()
    add_fault_members(session, into_id, moved)
    absorbed.status = FaultStatus.MERGED
    absorbed.merged_into = into_id
    session.flush()
    return into


def get_fault(session: Session, fault_id: str) -> Fault:
    fault = session.scalars(
        select(Fault).where(Fault.id == fault_id).options(selectinload(Fault.members))
    ).first()
    if fault is None:
        raise UnknownFault(f"no fault {fault_id!r}")
    return fault


def fault_report_ids(session: Session, fault_id: str) -> list[str]:
    """Client report ids rolled into a fault, in arrival order."""
    return list(
        session.scalars(
            select(Report.report_id)
            .join(FaultMember, FaultMember.report_pk == Report.id)
            .where(FaultMember.fault_id == fault_id)
            .order_by(Report.id)
        )
    )


def open_faults(session: Session) -> Sequence[Fault]:
    """Faults still needing attention, with their members loaded: rebuild on start."""
    return session.scalars(
        select(Fault)
        .where(Fault.status.in_(OPEN_FAULT_STATUSES))
        .options(selectinload(Fault.members))
        .order_by(Fault.created_at, Fault.id)
    ).all()


# ---------------------------------------------------------------------------------- work orders
@dataclass(frozen=True)
class Step:
    """Who moved a work order, when and where."""

    actor: str
    at: datetime = field(default_factory=utcnow)
    lon: float | None = None
    lat: float | None = None
    note: str | None = None
    details: dict[str, Any] | None = None


def create_work_order(
    session: Session, work_order_id: str, fault_id: str, step: Step, *, priority: int = 0
) -> WorkOrder:
    """A new work order for a fault, its log opened with event 1 (``created``)."""
    if session.get(Fault, fault_id) is None:
        raise UnknownFault(f"no fault {fault_id!r}")
    if session.get(WorkOrder, work_order_id) is not None:
        raise Conflict(f"work order {work_order_id!r} exists already")
    order = WorkOrder(id=work_order_id, fault_id=fault_id, priority=priority, last_seq=0)
    session.add(order)
    session.flush()
    record_work_order_event(session, work_order_id, WorkOrderState.CREATED, step)
    return order


def record_work_order_event(
    session: Session,
    work_order_id: str,
    state: WorkOrderState | str,
    step: Step,
    *,
    crew_id: str | None = None,
) -> WorkOrderEvent:
    """Append the next numbered event and move the work order to ``state``.

    The work order row is locked (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so
    two workers recording at once get consecutive sequence numbers, never the same one.
    """
    state = WorkOrderState(state)
    order = session.get(WorkOrder, work_order_id, with_for_update=True, populate_existing=True)
    if order is None:
        raise UnknownWorkOrder(f"no work order {work_order_id!r}")
    if WorkOrderState(order.state) in FINAL_WORK_ORDER_STATES:
        raise WorkOrderFinished(
            f"work order {work_order_id!r} is {order.state}; it cannot become {state.value}"
        )
    if crew_id is not None:
        if session.get(Crew, crew_id) is None:
            raise UnknownCrew(f"no crew {crew_id!r}")
        order.crew_id = crew_id
    order.last_seq += 1
    order.state = state.value
    event = WorkOrderEvent(
        work_order_id=work_order_id,
        seq=order.last_seq,
        state=state.value,
        at=step.at,
        actor=step.actor,
        lon=step.lon,
        lat=step.lat,
        note=step.note,
        details=step.details,
    )
    session.add(event)
    session.flush()
    return event


def assign_crew(session: Session, work_order_id: str, crew_id: str, step: Step) -> WorkOrderEvent:
    """Give a work order to a crew unless another open work order already holds the crew.

    The crew row is locked first (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), so
    two workers assigning the same crew at once cannot both succeed: the second sees the
    first's committed work order and gets :class:`CrewBusy`.
    """
    crew = session.get(Crew, crew_id, with_for_update=True, populate_existing=True)
    if crew is None:
        raise UnknownCrew(f"no crew {crew_id!r}")
    holding = session.scalar(
        select(WorkOrder.id).where(
            WorkOrder.crew_id == crew_id,
            WorkOrder.id != work_order_id,
            WorkOrder.state.in_([s.value for s in CREW_STATES]),
        )
    )
    if holding is not None:
        raise CrewBusy(f"crew {crew_id!r} is committed to work order {holding!r}")
    return record_work_order_event(
        session, work_order_id, WorkOrderState.ASSIGNED, step, crew_id=crew_id
    )


def get_work_order(session: Session, work_order_id: str) -> WorkOrder:
    """A work order with its full event log loaded."""
    order = session.scalars(
        select(WorkOrder)
        .where(WorkOrder.id == work_order_id)
        .options(selectinload(WorkOrder.events))
    ).first()
    if order is None:
        raise UnknownWorkOrder(f"no work order {work_order_id!r}")
    return order


def open_work_orders(session: Session) -> Sequence[WorkOrder]:
    """Work orders not yet closed, cancelled or merged, with events: rebuild on start."""
    return session.scalars(
        select(WorkOrder)
        .where(WorkOrder.state.not_in([s.value for s in FINAL_WORK_ORDER_STATES]))
        .options(selectinload(WorkOrder.events))
        .order_by(WorkOrder.created_at, WorkOrder.id)
    ).all()


# ---------------------------------------------------------------------------------- crews
@dataclass(frozen=True)
class CrewSpec:
    """A crew as the roster describes it."""

    id: str
    staff_number: str
    name: str | None = None
    members: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    vehicle: str | None = None
    depot_lon: float | None = None
    depot_lat: float | None = None
    shift_start: datetime | None = None
    shift_end: datetime | None = None


@dataclass(frozen=True)
class GpsFix:
    """One position report from a crew's vehicle or handset."""

    at: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None


def save_crew(session: Session, spec: CrewSpec) -> Crew:
    """Insert or update a crew from the roster."""
    crew = session.get(Crew, spec.id)
    if crew is None:
        crew = Crew(id=spec.id, status="available")
        session.add(crew)
    crew.staff_number = spec.staff_number
    crew.name = spec.name
    crew.members = list(spec.members)
    crew.skills = list(spec.skills)
    crew.vehicle = spec.vehicle
    crew.depot = (
        shapely.Point(spec.depot_lon, spec.depot_lat)
        if spec.depot_lon is not None and spec.depot_lat is not None
        else None
    )
    crew.shift_start = spec.shift_start
    crew.shift_end = spec.shift_end
    session.flush()
    return crew


def set_crew_status(session: Session, crew_id: str, status: str) -> Crew:
    crew = session.get(Crew, crew_id, with_for_update=True)
    if crew is None:
        raise UnknownCrew(f"no crew {crew_id!r}")
    crew.status = status
    return crew


def record_crew_fixes(session: Session, crew_id: str, fixes: Sequence[GpsFix]) -> int:
    """Append GPS fixes to a crew's track and move its last known position forward."""
    crew = session.get(Crew, crew_id, with_for_update=True)
    if crew is None:
        raise UnknownCrew(f"no crew {crew_id!r}")
    if not fixes:
        return 0
    session.execute(
        insert_for(session, CrewPosition),
        [
            {
                "crew_id": crew_id,
                "at": f.at,
                "lon": f.lon,
                "lat": f.lat,
                "accuracy_m": f.accuracy_m,
                "speed_mps": f.speed_mps,
                "heading_deg": f.heading_deg,
            }
            for f in fixes
        ],
    )
    newest = max(fixes, key=lambda f: f.at)
    if crew.last_fix_at is None or newest.at > crew.last_fix_at:
        crew.last_fix_at = newest.at
        crew.position = shapely.Point(newest.lon, newest.lat)
    return len(fixes)


def crew_track(
    session: Session, crew_id: str, since: datetime | None = None
) -> Sequence[CrewPosition]:
    query = select(CrewPosition).where(CrewPosition.crew_id == crew_id)
    if since is not None:
        query = query.where(CrewPosition.at >= since)
    return session.scalars(query.order_by(CrewPosition.at, CrewPosition.id)).all()


def all_crews(session: Session) -> Sequence[Crew]:
    """Every crew with its last fix: rebuild crew positions on start."""
    return session.scalars(select(Crew).order_by(Crew.id)).all()


# ---------------------------------------------------------------------------------- planned
def save_planned_outage(
    session: Session,
    outage_id: str,
    *,
    devices: Sequence[str],
    starts_at: datetime,
    ends_at: datetime,
    area: BaseGeometry | None = None,
    title: str | None = None,
) -> PlannedOutage:
    """Announce (or re-announce) planned work."""
    if ends_at <= starts_at:
        raise ValueError(f"planned outage {outage_id!r}: ends before it starts")
    outage = session.get(PlannedOutage, outage_id)
    if outage is None:
        outage = PlannedOutage(id=outage_id)
        session.add(outage)
    outage.devices = list(devices)
    outage.starts_at = starts_at
    outage.ends_at = ends_at
    outage.area = area
    outage.title = title
    session.flush()
    return outage


def cancel_planned_outage(session: Session, outage_id: str, at: datetime | None = None) -> None:
    outage = session.get(PlannedOutage, outage_id)
    if outage is None:
        raise NotFound(f"no planned outage {outage_id!r}")
    outage.cancelled_at = at or utcnow()


def current_planned_outages(session: Session, at: datetime) -> Sequence[PlannedOutage]:
    """Planned outages not cancelled and not over at ``at`` (current or upcoming)."""
    return session.scalars(
        select(PlannedOutage)
        .where(PlannedOutage.cancelled_at.is_(None), PlannedOutage.ends_at > at)
        .order_by(PlannedOutage.starts_at, PlannedOutage.id)
    ).all()


# ---------------------------------------------------------------------------------- escalations
def record_escalation(
    session: Session,
    reason: str,
    *,
    level: int = 1,
    fault_id: str | None = None,
    work_order_id: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Escalation:
    escalation = Escalation(
        reason=reason,
        level=level,
        fault_id=fault_id,
        work_order_id=work_order_id,
        details=details,
        at=at or utcnow(),
    )
    session.add(escalation)
    session.flush()
    return escalation


def resolve_escalation(session: Session, escalation_id: int, at: datetime | None = None) -> None:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFound(f"no escalation {escalation_id}")
    escalation.resolved_at = at or utcnow()


def open_escalations(session: Session) -> Sequence[Escalation]:
    return session.scalars(
        select(Escalation).where(Escalation.resolved_at.is_(None)).order_by(Escalation.at)
    ).all()


# ---------------------------------------------------------------------------------- restart
@dataclass(frozen=True)
class RestartState:
    """Everything the in-memory engine rebuilds from on start, read in one transaction."""

    open_faults: Sequence[Fault]
    fault_reports: dict[str, list[str]]  # open fault id → member client report ids
    open_work_orders: Sequence[WorkOrder]  # with their event logs loaded
    crews: Sequence[Crew]
    planned_outages: Sequence[PlannedOutage]
    awaiting_inference: Sequence[Report]  # accepted, not yet answered: replay these
    open_escalations: Sequence[Escalation]


def load_restart_state(session: Session, now: datetime | None = None) -> RestartState:
    """Read what a restarted engine needs: open faults and their reports, open work orders,
    crew positions, current planned outages, and reports accepted but never inferred."""
    faults = open_faults(session)
    members: dict[str, list[str]] = {f.id: [] for f in faults}
    if members:
        rows = session.execute(
            select(FaultMember.fault_id, Report.report_id)
            .join(Report, Report.id == FaultMember.report_pk)
            .where(FaultMember.fault_id.in_(list(members)))
            .order_by(Report.id)
        ).all()
        for fault_id, report_id in rows:
            members[fault_id].append(report_id)
    return RestartState(
        open_faults=faults,
        fault_reports=members,
        open_work_orders=open_work_orders(session),
        crews=all_crews(session),
        planned_outages=current_planned_outages(session, now or utcnow()),
        awaiting_inference=reports_awaiting_inference(session),
        open_escalations=open_escalations(session),
    )


# ---------------------------------------------------------------------------------- engine rebuild
def reports_in_arrival_order(session: Session) -> Sequence[Report]:
    """Every stored report in the order the service took it (a batch shares one
    ``received_at``): the API replays them through the engine on start."""
    return session.scalars(select(Report).order_by(Report.received_at, Report.id)).all()


def work_order_events_with_details(session: Session) -> Sequence[WorkOrderEvent]:
    """Work-order events that carry details, oldest first (the API tags the input that
    caused each event there, so a restart can replay crew steps and desk assignments)."""
    rows = session.scalars(select(WorkOrderEvent).order_by(WorkOrderEvent.id)).all()
    return [row for row in rows if row.details]


def work_order_progress(session: Session) -> dict[str, int]:
    """Work order id → number of events recorded (its ``last_seq``), for every order."""
    rows = session.execute(select(WorkOrder.id, WorkOrder.last_seq)).all()
    return {work_order_id: last_seq for work_order_id, last_seq in rows}


def record_rating(session: Session, report_id: str, rating: dict[str, Any]) -> Report:
    """Keep a customer's follow-up answer (power back?, stars, comment) with their report;
    the latest answer wins."""
    report = get_report(session, report_id)
    report.payload = {**(report.payload or {}), "rating": rating}
    session.flush()
    return report


def save_answers(
    session: Session,
    answers: Sequence[tuple[str, dict[str, Any], str | None, str | None]],
    inferred_at: datetime | None = None,
) -> None:
    """Batch form of :func:`save_answer` — ``(report_id, answer, resolved_meter, fault_id)``
    rows in one executemany; a report keeps its first answer."""
    if not answers:
        return
    table = Report.__table__
    statement = (
        update(table)
        .where(table.c.report_id == bindparam("b_report_id"), table.c.answer.is_(None))
        .values(
            answer=bindparam("b_answer", type_=table.c.answer.type),
            resolved_meter=bindparam("b_meter"),
            fault_id=bindparam("b_fault"),
            inferred_at=bindparam("b_at", type_=table.c.inferred_at.type),
        )
    )
    at = inferred_at or utcnow()
    session.connection().execute(
        statement,
        [
            {"b_report_id": rid, "b_answer": answer, "b_meter": meter, "b_fault": fault, "b_at": at}
            for rid, answer, meter, fault in answers
        ],
    )
