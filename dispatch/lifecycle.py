"""Work-order lifecycle: the states a repair job walks through and who may move it.

``created → assigned → accepted → en_route → arrived → diagnosing → repairing → restored →
closed``, plus ``cancelled`` and ``merged``. Every change is an event stamped with time,
actor, position and a per-job sequence number, kept in the order's log.

Two kinds of "wrong" event are told apart:

- an event that arrives *late or duplicated* (a stale per-job sequence number, a crew app
  re-sending "en_route" after "arrived") is ignored and noted — the job never moves back;
- a *fresh* request the lifecycle does not allow (``restored → en_route``) is refused with
  :class:`~gridmend.dispatch.errors.IllegalTransition` (HTTP 409) naming from, to and why.

Only the dispatcher may step a job back to ``created`` (a crew released by re-optimisation
or declining), and only before the crew has arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gridmend.dispatch.errors import IllegalTransition

LonLat = tuple[float, float]


class WorkOrderState(StrEnum):
    """Lifecycle of a work order, in the order a crew normally walks it."""

    CREATED = "created"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    DIAGNOSING = "diagnosing"
    REPAIRING = "repairing"
    RESTORED = "restored"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    MERGED = "merged"


S = WorkOrderState

#: Position along the normal walk; terminal side-exits rank last.
STAGE: dict[WorkOrderState, int] = {
    S.CREATED: 0,
    S.ASSIGNED: 1,
    S.ACCEPTED: 2,
    S.EN_ROUTE: 3,
    S.ARRIVED: 4,
    S.DIAGNOSING: 5,
    S.REPAIRING: 6,
    S.RESTORED: 7,
    S.CLOSED: 8,
    S.CANCELLED: 9,
    S.MERGED: 9,
}

FINAL_STATES: frozenset[WorkOrderState] = frozenset({S.CLOSED, S.CANCELLED, S.MERGED})
#: A crew is committed to the job (travelling or working) in these states.
CREW_STATES: frozenset[WorkOrderState] = frozenset(
    {S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE, S.ARRIVED, S.DIAGNOSING, S.REPAIRING}
)
#: The crew has not reached the site yet: the job may still be given to another crew.
BEFORE_ARRIVAL: frozenset[WorkOrderState] = frozenset(
    {S.CREATED, S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE}
)
#: The crew is at the site (arrival promise kept, work under way).
ON_SITE: frozenset[WorkOrderState] = frozenset({S.ARRIVED, S.DIAGNOSING, S.REPAIRING})

#: Allowed moves. Back to ``created`` = crew released before arrival (dispatcher only).
TRANSITIONS: dict[WorkOrderState, frozenset[WorkOrderState]] = {
    S.CREATED: frozenset({S.ASSIGNED, S.CANCELLED, S.MERGED}),
    S.ASSIGNED: frozenset({S.ACCEPTED, S.EN_ROUTE, S.CREATED, S.CANCELLED, S.MERGED}),
    S.ACCEPTED: frozenset({S.EN_ROUTE, S.ARRIVED, S.CREATED, S.CANCELLED, S.MERGED}),
    S.EN_ROUTE: frozenset({S.ARRIVED, S.CREATED, S.CANCELLED, S.MERGED}),
    S.ARRIVED: frozenset({S.DIAGNOSING, S.REPAIRING, S.RESTORED, S.CANCELLED, S.MERGED}),
    S.DIAGNOSING: frozenset({S.REPAIRING, S.RESTORED, S.CANCELLED, S.MERGED}),
    S.REPAIRING: frozenset({S.RESTORED}),
    S.RESTORED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
    S.MERGED: frozenset(),
}

#: Actor name used for moves the dispatcher itself makes.
DISPATCHER = "dispatcher"


def parse_state(text: str) -> WorkOrderState:
    """A state from its name; ValueError lists the valid names."""
    try:
        return WorkOrderState(str(text).strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in WorkOrderState)
        raise ValueError(f"unknown work-order state {text!r} (expected one of {names})") from None


def _why_not(current: WorkOrderState, target: WorkOrderState) -> str:
    if current in FINAL_STATES:
        return f"the order is {current.value}, which is final"
    if target == S.CREATED:
        return "a crew can only be released before it has arrived on site"
    if STAGE[target] < STAGE[current]:
        return f"{target.value} comes before {current.value}; a job never moves backwards"
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current]))
    return f"from {current.value} the next step is one of: {allowed}"


@dataclass(frozen=True)
class Transition:
    """One stamped state change of a work order."""

    seq: int  # position in the order's log, 1, 2, …
    time: float
    from_state: WorkOrderState
    to_state: WorkOrderState
    actor: str
    position: LonLat | None = None
    reason: str = ""
    sender_seq: int | None = None  # the sender's per-job sequence number, when it sent one

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "time": self.time,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "actor": self.actor,
            "position": list(self.position) if self.position else None,
            "reason": self.reason,
            "sender_seq": self.sender_seq,
        }


@dataclass(frozen=True)
class IgnoredEvent:
    """An out-of-order or duplicate event that was kept out of the lifecycle (audit trail)."""

    time: float
    to_state: WorkOrderState
    actor: str
    seq: int | None
    reason: str


@dataclass
class WorkOrder:
    """One repair job (per fault, or a customer-side visit) and its event log."""

    work_order_id: str
    fault_id: str | None
    device: int  # element index of the suspected device (-1 for customer visits)
    location: LonLat
    created_at: float
    kind: str = "fault"  # "fault" or "customer_visit"
    state: WorkOrderState = S.CREATED
    crew_id: str | None = None
    last_seq: int = 0  # highest per-job sequence number a sender (crew app) has used
    events: list[Transition] = field(default_factory=list)
    ignored: list[IgnoredEvent] = field(default_factory=list)
    merged_into: str | None = None
    reopens: str | None = None  # the restored order this one reopens or splits from

    # ------------------------------------------------------------------ queries
    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_open(self) -> bool:
        """Still needs a crew's attention before restoration."""
        return self.state not in FINAL_STATES and self.state != S.RESTORED

    def time_of(self, state: WorkOrderState) -> float | None:
        """When the order (last) entered ``state``, if it did."""
        for t in reversed(self.events):
            if t.to_state == state:
                return t.time
        return None

    def first_time_of(self, state: WorkOrderState) -> float | None:
        for t in self.events:
            if t.to_state == state:
                return t.time
        return None

    @property
    def dispatched_at(self) -> float | None:
        """First time a crew was given the job (the 48 h restoration clock starts here)."""
        return self.first_time_of(S.ASSIGNED)

    @property
    def last_time(self) -> float:
        return self.events[-1].time if self.events else self.created_at

    # ------------------------------------------------------------------ changes
    def can_move(self, target: WorkOrderState) -> bool:
        return target in TRANSITIONS[self.state]

    def transition(
        self,
        target: WorkOrderState | str,
        *,
        time: float,
        actor: str,
        position: LonLat | None = None,
        seq: int | None = None,
        reason: str = "",
    ) -> Transition | None:
        """Move the job to ``target``; None when the event is stale and was ignored.

        ``seq`` is the sender's per-job sequence number (crew app); a number at or below
        the last one seen is a late or repeated event. A backwards move stamped before the
        last change is late too. Anything else the lifecycle forbids raises
        :class:`IllegalTransition`.
        """
        target = parse_state(target) if isinstance(target, str) else target
        stale = None
        if seq is not None and seq <= self.last_seq:
            stale = f"sequence {seq} is not after {self.last_seq}"
        elif target == self.state:
            stale = f"already {target.value}"
        elif (
            target not in TRANSITIONS[self.state]
            and STAGE[target] < STAGE[self.state]
            and time < self.last_time
        ):
            stale = f"event at {time:.0f} predates the last change at {self.last_time:.0f}"
        if stale is not None:
            self.ignored.append(IgnoredEvent(time, target, actor, seq, stale))
            return None
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                self.work_order_id, self.state.value, target.value, _why_not(self.state, target)
            )
        if target == S.CREATED and actor != DISPATCHER:
            raise IllegalTransition(
                self.work_order_id,
                self.state.value,
                target.value,
                "only the dispatcher releases a crew from a job",
            )
        event = Transition(
            len(self.events) + 1, float(time), self.state, target, actor, position, reason, seq
        )
        self.events.append(event)
        if seq is not None:
            self.last_seq = seq
        self.state = target
        if target == S.CREATED:
            self.crew_id = None
        return event

    def to_dict(self) -> dict[str, object]:
        return {
            "work_order_id": self.work_order_id,
            "fault_id": self.fault_id,
            "kind": self.kind,
            "state": self.state.value,
            "crew_id": self.crew_id,
            "location": list(self.location),
            "created_at": self.created_at,
            "dispatched_at": self.dispatched_at,
            "merged_into": self.merged_into,
            "reopens": self.reopens,
            "events": [e.to_dict() for e in self.events],
        }
