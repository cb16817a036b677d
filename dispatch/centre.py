"""The outage centre: inference, crew dispatch and customer progress as one pure engine.

Reports go in, answers come out at once; faults the inference engine finds become work
orders the dispatcher staffs; every step a crew takes becomes courier-style notifications
for every customer following the fault. The HTTP service (wall clock, database, outbox)
and the storm replay (simulated clock, KPIs) both drive this same object, so what a planner
replays is what dispatchers run.

Nothing here reads a clock or does I/O: every call carries ``now`` (epoch seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from gridmend.dispatch.answers import Answer, AnswerKind
from gridmend.dispatch.crews import Crew
from gridmend.dispatch.dispatcher import Dispatcher, DispatchEvent, DispatchSettings, Event
from gridmend.dispatch.escalation import Escalation
from gridmend.dispatch.fault_view import fault_view_from_engine
from gridmend.dispatch.followup import CustomerAnswer, FollowUpDecision
from gridmend.dispatch.inference import Fault, FaultStatus, OutageEngine
from gridmend.dispatch.lifecycle import DISPATCHER, FINAL_STATES, ON_SITE, WorkOrderState
from gridmend.dispatch.notifications import Notification, ProgressNotifier
from gridmend.dispatch.reports import Report
from gridmend.dispatch.rules import InferenceSettings
from gridmend.dispatch.service_class import ServiceClassMap
from gridmend.geo.routing import Router
from gridmend.topology.network import Topology

LonLat = tuple[float, float]


@dataclass
class Outcome:
    """What one input caused: the caller's answer, dispatcher events, customer notices."""

    answers: list[Answer] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    def extend(self, other: Outcome) -> Outcome:
        self.answers += other.answers
        self.events += other.events
        self.notifications += other.notifications
        return self


class OutageCentre:
    """Inference + dispatch + progress notifications over one traced grid."""

    def __init__(
        self,
        topology: Topology,
        router: Router,
        crews: Iterable[Crew],
        *,
        inference: InferenceSettings | None = None,
        dispatch: DispatchSettings | None = None,
        notifier: ProgressNotifier | None = None,
    ) -> None:
        self.topology = topology
        self.engine = OutageEngine(topology, inference)
        self.dispatcher = Dispatcher(topology, router, crews, dispatch)
        self.notifier = notifier or ProgressNotifier()
        self.service_map = ServiceClassMap(topology)
        self._known: dict[str, tuple[str, int]] = {}  # fault id → (status, device) last synced
        self._answer_updates_seen = 0
        self.now = float("-inf")

    # ------------------------------------------------------------------ reports
    def take_report(self, report: Report) -> Outcome:
        """One report: answered at once; a new fault is staffed before this returns."""
        return self.take_reports([report])

    def take_reports(self, reports: list[Report]) -> Outcome:
        """A batch (resolved vectorised), answered in input order."""
        outcome = Outcome()
        if not reports:
            return outcome
        answers = self.engine.ingest_many(reports)
        self.now = max(self.now, max(r.time for r in reports))
        touched = [
            a.fault_id
            for a in answers
            if a.fault_id and a.kind in (AnswerKind.NEW_FAULT, AnswerKind.MERGED)
        ]
        outcome.extend(self._sync(touched, self.now))
        for report, answer in zip(reports, answers, strict=True):
            answer = self._with_eta(answer)
            outcome.answers.append(answer)
            outcome.notifications += self.notifier.report_answered(
                report.report_id,
                answer.kind.value,
                answer.fault_id,
                report.time,
                status=answer.status,
                eta=answer.eta,
            )
        return outcome

    def _with_eta(self, answer: Answer) -> Answer:
        """A merged caller hears the fault's status and the crew's ETA when one is known."""
        if answer.fault_id is None or answer.kind != AnswerKind.MERGED:
            return answer
        order = self.dispatcher.order_for_fault(answer.fault_id)
        if order is None:
            return answer
        eta = self.dispatcher.eta_of(order.work_order_id)
        return replace(
            answer, status=order.state.value, eta=eta.expected if eta is not None else None
        )

    # ------------------------------------------------------------------ crews
    def crew_event(
        self,
        crew_id: str,
        work_order_id: str,
        state: WorkOrderState | str,
        now: float,
        *,
        seq: int | None = None,
        position: LonLat | None = None,
        cause: str | None = None,
        expected_completion: float | None = None,
    ) -> Outcome:
        """A crew app step (accepted, en_route, arrived, diagnosing, repairing, restored)."""
        self.now = max(self.now, now)
        events = self.dispatcher.on_crew_event(
            crew_id, work_order_id, state, now, seq=seq, position=position, cause=cause
        )
        outcome = Outcome(events=events)
        outcome.notifications += self._notify(events, cause, expected_completion)
        return outcome

    def follow_up(
        self, work_order_id: str, answers: Iterable[CustomerAnswer], now: float
    ) -> tuple[FollowUpDecision, Outcome]:
        """Customers answered "is your power back?": record them, and when part of the area
        is still dark, reopen or split the order (once) so a crew goes back."""
        self.now = max(self.now, now)
        decision = None
        for answer in answers:
            decision = self.dispatcher.follow_up_answer(work_order_id, answer, now)
        if decision is None:
            decision = self.dispatcher.followups[work_order_id].decide(self.topology, now)
        events = self.dispatcher.reopen(decision, now)
        order = self.dispatcher.orders[work_order_id]
        if events and order.state == WorkOrderState.RESTORED:
            # The remaining outage lives on in the linked new order; this one is done.
            reason = f"follow-up: {decision.decision.value} ({decision.reason})"
            order.transition(WorkOrderState.CLOSED, time=now, actor=DISPATCHER, reason=reason)
            events.append(
                DispatchEvent("state", now, work_order_id, order.crew_id, {"to": "closed"})
            )
        return decision, Outcome(events=events, notifications=self._notify(events))

    def assign(self, work_order_id: str, crew_id: str, now: float, reason: str) -> Outcome:
        """A dispatcher assigns (or reassigns) a crew by hand; customers hear of it."""
        self.now = max(self.now, now)
        events = self.dispatcher.assign_to(work_order_id, crew_id, now, reason)
        return Outcome(events=events, notifications=self._notify(events))

    def gps(self, crew_id: str, lon: float, lat: float, now: float) -> Outcome:
        self.now = max(self.now, now)
        events = self.dispatcher.on_gps(crew_id, lon, lat, now)
        return Outcome(events=events, notifications=self._notify(events))

    # ------------------------------------------------------------------ clock
    def tick(self, now: float) -> Outcome:
        """Time passes: inference re-judges, faults sync to orders, dispatch re-plans."""
        self.now = max(self.now, now)
        self.engine.advance(now)
        outcome = self._sync(None, now)
        events = self.dispatcher.tick(now)
        outcome.events += events
        outcome.notifications += self._notify(events)
        return outcome

    # ------------------------------------------------------------------ fault ↔ order sync
    def _sync(self, fault_ids: list[str] | None, now: float) -> Outcome:
        """Bring work orders in line with the inference engine's faults.

        ``None`` checks every fault (on ticks); a list checks only those the last reports
        touched, so intake stays O(reports).
        """
        engine = self.engine
        outcome = Outcome()
        faults: Iterable[Fault]
        if fault_ids is None:
            faults = list(engine.faults.values())
        else:
            faults = [engine.faults[f] for f in dict.fromkeys(fault_ids) if f in engine.faults]
        for fault in faults:
            key = (fault.status, int(fault.device))
            seen = self._known.get(fault.fault_id)
            if seen == key:
                continue
            self._known[fault.fault_id] = key
            order = self.dispatcher.order_for_fault(fault.fault_id)
            moved_after_done = (
                fault.status == FaultStatus.OPEN
                and seen is not None
                and seen[1] != int(fault.device)
                and order is not None
                and order.state in (WorkOrderState.RESTORED, WorkOrderState.CLOSED)
            )
            if moved_after_done or (
                fault.status in FaultStatus.ACTIVE
                and order is not None
                and order.state in (WorkOrderState.MERGED, WorkOrderState.CANCELLED)
            ):
                # The engine revived a fault it had merged or withdrawn, or now suspects
                # another device after the crew finished: the fault needs a new order.
                self.dispatcher.order_of_fault.pop(fault.fault_id, None)
                order = None
            if fault.status in FaultStatus.ACTIVE:
                view = fault_view_from_engine(engine, fault, self.service_map)
                events = self.dispatcher.on_fault(view, now)
                outcome.events += events
                outcome.notifications += self._notify(events)
                if fault.status == FaultStatus.RESTORED and (
                    seen is None or seen[0] != FaultStatus.RESTORED
                ):
                    outcome.notifications += self.notifier.work_order_moved(
                        fault.fault_id, "restored", now
                    )
            elif (
                order is not None
                and order.is_open
                # A crew already on site finishes and reports; the lifecycle allows no exit.
                and order.state not in ON_SITE
            ):
                merged = fault.status == FaultStatus.MERGED and fault.merged_into is not None
                if merged:
                    self.notifier.move_followers(fault.fault_id, fault.merged_into)
                state = WorkOrderState.MERGED if merged else WorkOrderState.CANCELLED
                events = self.dispatcher.close_fault(
                    fault.fault_id, state, now, merged_into=fault.merged_into if merged else None
                )
                outcome.events += events
        return outcome

    # ------------------------------------------------------------------ notifications
    def _notify(
        self,
        events: list[Event],
        cause: str | None = None,
        expected_completion: float | None = None,
    ) -> list[Notification]:
        """Dispatcher events → customer notifications for the orders' faults."""
        out: list[Notification] = []
        dispatcher = self.dispatcher
        for event in events:
            if isinstance(event, Escalation):
                order = dispatcher.orders.get(event.work_order_id)
                out += self.notifier.escalation(
                    order.fault_id if order else None, event.type.value, event.time, event.reason
                )
                continue
            if not isinstance(event, DispatchEvent) or event.work_order_id is None:
                continue
            order = dispatcher.orders.get(event.work_order_id)
            if order is None:
                continue
            crew = dispatcher.crews.get(event.crew_id) if event.crew_id else None
            staff = crew.staff_number if crew else None
            eta = dispatcher.eta_of(event.work_order_id)
            window = (eta.earliest, eta.latest) if eta else None
            if event.type == "state":
                out += self.notifier.work_order_moved(
                    order.fault_id,
                    str(event.data.get("to")),
                    event.time,
                    crew=staff,
                    eta_window=window,
                    cause=cause,
                    expected_completion=expected_completion,
                )
            elif event.type == "eta" and window is not None:
                out += self.notifier.eta_changed(order.fault_id, window, event.time)
        return out

    # ------------------------------------------------------------------ views
    def open_orders(self) -> list[str]:
        return [oid for oid, o in self.dispatcher.orders.items() if o.state not in FINAL_STATES]
