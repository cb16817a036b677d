"""Tables of the dispatch record: reports, faults, work orders, crews, outages, escalations.

A report row is written before the report is acknowledged and keeps the raw payload as
received, so nothing accepted can be lost and every answer can be explained later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmend.db.base import Base
from gridmend.db.types import Geometry, JsonDocument, UtcDateTime, utcnow
from gridmend.dispatch.inference import FaultStatus
from gridmend.dispatch.lifecycle import FINAL_STATES, WorkOrderState

#: States after which a work order takes no further events (the engine's lifecycle).
FINAL_WORK_ORDER_STATES: frozenset[WorkOrderState] = FINAL_STATES
#: Fault statuses the engine still works on: rebuilt after a restart.
OPEN_FAULT_STATUSES: tuple[str, ...] = tuple(sorted(FaultStatus.ACTIVE))


def _gist(table: str, column: str = "geom") -> Index:
    return Index(f"ix_{table}_{column}", column, postgresql_using="gist").ddl_if(
        dialect="postgresql"
    )


class Report(Base):
    """An outage report as received, plus what the engine answered."""

    __tablename__ = "reports"
    __table_args__ = (
        _gist("reports"),
        Index("ix_reports_fault_id", "fault_id"),
        Index("ix_reports_pending", "inferred_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(String(128), unique=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    channel: Mapped[str | None] = mapped_column(String(32))
    meter_id: Mapped[str | None] = mapped_column(String(200))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    crs: Mapped[str | None] = mapped_column(String(32))
    scope: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(300))
    callback_url: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    geom: Mapped[BaseGeometry | None] = mapped_column(Geometry("POINT"))
    resolved_meter: Mapped[str | None] = mapped_column(String(200))
    answer: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    inferred_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    fault_id: Mapped[str | None] = mapped_column(ForeignKey("faults.id"))

    fault: Mapped[Fault | None] = relationship(lazy="raise", foreign_keys=[fault_id])


class Fault(Base):
    """A suspected or confirmed fault at a protective device, rolled up from reports."""

    __tablename__ = "faults"
    __table_args__ = (_gist("faults", "area"), Index("ix_faults_status", "status"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("grid_snapshots.id"))
    suspected_device: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), default=FaultStatus.OPEN)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    customer_count: Mapped[int] = mapped_column(Integer, default=0)
    critical_count: Mapped[int] = mapped_column(Integer, default=0)
    area: Mapped[BaseGeometry | None] = mapped_column(Geometry("GEOMETRY"))
    first_report_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    eta: Mapped[datetime | None] = mapped_column(UtcDateTime())
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("faults.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)

    members: Mapped[list[FaultMember]] = relationship(
        back_populates="fault", lazy="raise", cascade="all, delete-orphan"
    )


class FaultMember(Base):
    """A report rolled into a fault, and when; a merged fault's members move with it."""

    __tablename__ = "fault_members"

    fault_id: Mapped[str] = mapped_column(
        ForeignKey("faults.id", ondelete="CASCADE"), primary_key=True
    )
    report_pk: Mapped[int] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    fault: Mapped[Fault] = relationship(back_populates="members", lazy="raise")
    report: Mapped[Report] = relationship(lazy="raise")


class Crew(Base):
    """A repair crew: who, what they can do, where they start, and their last GPS fix."""

    __tablename__ = "crews"
    __table_args__ = (_gist("crews", "position"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_number: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    members: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    skills: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    vehicle: Mapped[str | None] = mapped_column(String(200))
    depot: Mapped[BaseGeometry | None] = mapped_column(Geometry("POINT"))
    shift_start: Mapped[datetime | None] = mapped_column(UtcDateTime())
    shift_end: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(32), default="available")
    position: Mapped[BaseGeometry | None] = mapped_column(Geometry("POINT"))
    last_fix_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class CrewPosition(Base):
    """One GPS fix of a crew's track."""

    __tablename__ = "crew_positions"
    __table_args__ = (Index("ix_crew_positions_crew_at", "crew_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crew_id: Mapped[str] = mapped_column(ForeignKey("crews.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    heading_deg: Mapped[float | None] = mapped_column(Float)


class WorkOrder(Base):
    """The repair job for one fault; ``last_seq`` numbers its event log without gaps."""

    __tablename__ = "work_orders"
    __table_args__ = (Index("ix_work_orders_state", "state"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fault_id: Mapped[str] = mapped_column(ForeignKey("faults.id"), index=True)
    crew_id: Mapped[str | None] = mapped_column(ForeignKey("crews.id"), index=True)
    state: Mapped[str] = mapped_column(String(32), default=WorkOrderState.CREATED.value)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("work_orders.id"))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)

    events: Mapped[list[WorkOrderEvent]] = relationship(
        back_populates="work_order",
        lazy="raise",
        order_by="WorkOrderEvent.seq",
        cascade="all, delete-orphan",
    )
    crew: Mapped[Crew | None] = relationship(lazy="raise")


class WorkOrderEvent(Base):
    """One step of a work order's life: new state, when, who, where, in sequence."""

    __tablename__ = "work_order_events"
    __table_args__ = (UniqueConstraint("work_order_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_order_id: Mapped[str] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)

    work_order: Mapped[WorkOrder] = relationship(back_populates="events", lazy="raise")


class PlannedOutage(Base):
    """Announced maintenance: reports from inside it are explained, not rolled into faults."""

    __tablename__ = "planned_outages"
    __table_args__ = (
        _gist("planned_outages", "area"),
        Index("ix_planned_outages_window", "ends_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(300))
    devices: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    area: Mapped[BaseGeometry | None] = mapped_column(Geometry("GEOMETRY"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Escalation(Base):
    """A missed promise or an unattended critical customer raised to a higher level."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_open", "resolved_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fault_id: Mapped[str | None] = mapped_column(ForeignKey("faults.id"), index=True)
    work_order_id: Mapped[str | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    details: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
