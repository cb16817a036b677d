"""Escalations: the events a supervisor (and later webhooks and the map) must see.

- arrival promise **at risk** — the expected arrival passes the promise deadline;
- arrival promise **broken** — the deadline passed and no crew is on site;
- **no restoration** 48 h after the order was dispatched;
- **no crew available** — an order still without a crew N minutes after it was raised.

Everything is evaluated against a given clock ``now`` (epoch seconds), so a replay or a
simulated clock gets the same escalations as real time. Each escalation fires once per
order; "at risk" re-arms when a new ETA is back inside the promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gridmend.dispatch.eta import EtaWindow
from gridmend.dispatch.lifecycle import BEFORE_ARRIVAL, FINAL_STATES, WorkOrder, WorkOrderState


class EscalationType(StrEnum):
    PROMISE_AT_RISK = "promise_at_risk"
    PROMISE_BROKEN = "promise_broken"
    NO_RESTORATION = "no_restoration"
    NO_CREW_AVAILABLE = "no_crew_available"


@dataclass(frozen=True)
class EscalationSettings:
    no_restoration_s: float = 48 * 3600.0  # after dispatch
    no_crew_s: float = 30 * 60.0  # N minutes without a crew


@dataclass(frozen=True)
class Escalation:
    """One escalation event."""

    type: EscalationType
    work_order_id: str
    time: float
    reason: str
    crew_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "event": "escalation",
            "type": self.type.value,
            "work_order_id": self.work_order_id,
            "time": self.time,
            "reason": self.reason,
            "crew_id": self.crew_id,
        }


def due(
    order: WorkOrder,
    now: float,
    promise_deadline: float,
    eta: EtaWindow | None,
    settings: EscalationSettings,
) -> list[Escalation]:
    """Escalations that hold for ``order`` at ``now`` (without de-duplication)."""
    out: list[Escalation] = []
    if order.state in FINAL_STATES:
        return out
    oid, crew = order.work_order_id, order.crew_id
    before_arrival = order.state in BEFORE_ARRIVAL
    if before_arrival and now > promise_deadline:
        out.append(
            Escalation(
                EscalationType.PROMISE_BROKEN,
                oid,
                now,
                f"no crew on site {(now - promise_deadline) / 60:.0f} min after the promise",
                crew,
            )
        )
    elif before_arrival and eta is not None and eta.at_risk:
        out.append(
            Escalation(
                EscalationType.PROMISE_AT_RISK,
                oid,
                now,
                f"expected arrival is {eta.minutes_late():.0f} min after the promise",
                crew,
            )
        )
    dispatched = order.dispatched_at
    if (
        dispatched is not None
        and order.state != WorkOrderState.RESTORED
        and now - dispatched >= settings.no_restoration_s
    ):
        hours = settings.no_restoration_s / 3600.0
        out.append(
            Escalation(
                EscalationType.NO_RESTORATION,
                oid,
                now,
                f"not restored {hours:.0f} h after dispatch",
                crew,
            )
        )
    if order.state == WorkOrderState.CREATED:
        waiting_since = order.time_of(WorkOrderState.CREATED) or order.created_at
        if now - waiting_since >= settings.no_crew_s:
            out.append(
                Escalation(
                    EscalationType.NO_CREW_AVAILABLE,
                    oid,
                    now,
                    f"no crew available for {(now - waiting_since) / 60:.0f} min",
                )
            )
    return out


@dataclass
class Escalator:
    """De-duplicates escalations: each fires once per order ("at risk" re-arms)."""

    settings: EscalationSettings = field(default_factory=EscalationSettings)
    raised: set[tuple[EscalationType, str]] = field(default_factory=set)
    history: list[Escalation] = field(default_factory=list)

    def check(
        self, order: WorkOrder, now: float, promise_deadline: float, eta: EtaWindow | None
    ) -> list[Escalation]:
        """New escalations for ``order`` at ``now``."""
        found = due(order, now, promise_deadline, eta, self.settings)
        at_risk_key = (EscalationType.PROMISE_AT_RISK, order.work_order_id)
        if at_risk_key in self.raised and not any(
            e.type == EscalationType.PROMISE_AT_RISK for e in found
        ):
            self.raised.discard(at_risk_key)  # back inside the promise: re-arm
        fresh = []
        for e in found:
            key = (e.type, e.work_order_id)
            if key not in self.raised:
                self.raised.add(key)
                fresh.append(e)
        self.history.extend(fresh)
        return fresh
