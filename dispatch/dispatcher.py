"""The dispatcher: faults in, crews sent, ETAs kept fresh, escalations out.

:class:`Dispatcher` ties the pieces together and holds the live state — crews, work
orders, ETA windows, follow-ups, the repeated-fault register — in memory. It never reads
the wall clock: every call carries the time it happens at (epoch seconds), so a replay or a
simulated clock drives it exactly like real time. Every call returns the events it caused
(:class:`DispatchEvent` and :class:`~gridmend.dispatch.escalation.Escalation`) for the
shell to publish (webhooks, map, customer tracker).

- :meth:`on_fault` — a new (or updated) fault: open a work order, send the crew that arrives
  first by road (greedy); in storm mode :meth:`tick` re-plans all waiting work at once.
- :meth:`on_crew_event` — the crew app moves its job (accepted, en_route, arrived, …).
- :meth:`on_gps` — a position fix: refresh the ETA window and check the arrival promise.
- :meth:`tick` — the clock moved: storm re-optimisation, escalations, follow-up closing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from gridmend.dispatch.assignment import (
    AssignmentSettings,
    Candidate,
    Choice,
    OriginCache,
    choose_nearest,
    reoptimise,
    repair_estimate_s,
    required_skills,
    work_left_s,
)
from gridmend.dispatch.crews import Crew, CrewStatus, Skill
from gridmend.dispatch.errors import CrewConflict, UnknownCrew, UnknownWorkOrder
from gridmend.dispatch.escalation import Escalation, EscalationSettings, Escalator
from gridmend.dispatch.eta import EtaSettings, EtaWindow, eta_window
from gridmend.dispatch.fault_view import FaultView, fault_view_for_device
from gridmend.dispatch.followup import CustomerAnswer, Decision, FollowUp, FollowUpDecision
from gridmend.dispatch.lifecycle import (
    BEFORE_ARRIVAL,
    DISPATCHER,
    FINAL_STATES,
    ON_SITE,
    WorkOrder,
    WorkOrderState,
    parse_state,
)
from gridmend.dispatch.priority import Priority, PriorityWeights, priority_of
from gridmend.dispatch.repeat_faults import FaultRecord, RepeatFaultRegister
from gridmend.geo.routing import OutOfCoverageError, Route, Router
from gridmend.topology.elements import Kind, ServiceClass
from gridmend.topology.network import Topology

LonLat = tuple[float, float]
S = WorkOrderState
_SKILL_BIT = {skill: 1 << i for i, skill in enumerate(Skill)}


def _skill_mask(skills: Iterable[Skill]) -> int:
    return sum(_SKILL_BIT[s] for s in set(skills))


@dataclass(frozen=True)
class DispatchSettings:
    priority: PriorityWeights = field(default_factory=PriorityWeights)
    assignment: AssignmentSettings = field(default_factory=AssignmentSettings)
    eta: EtaSettings = field(default_factory=EtaSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    #: Open orders still waiting for a crew at which :meth:`Dispatcher.tick` re-plans in batch.
    storm_threshold: int = 8
    #: In storm mode, let a new (non-critical) fault wait for the tick's batch plan instead
    #: of queueing it on the crew that arrives first at once. Off by default: in the Enshi
    #: replay queueing at once gave ≈ 4 % lower SAIDI and better promise compliance.
    defer_in_storm: bool = False
    #: Farthest a crew is sent for one new fault (seconds of road travel).
    greedy_cap_s: float = 3 * 3600.0
    #: Recompute the current job's route shape on every ETA refresh (else on demand via
    #: :meth:`Dispatcher.route`; ETAs themselves use the router's bounded nearest search).
    eager_route_geometry: bool = False


@dataclass(frozen=True)
class DispatchEvent:
    """Something the dispatcher did or noticed (assigned, released, eta, state …)."""

    type: str
    time: float
    work_order_id: str | None = None
    crew_id: str | None = None
    data: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "event": self.type,
            "time": self.time,
            "work_order_id": self.work_order_id,
            "crew_id": self.crew_id,
            **self.data,
        }


Event = DispatchEvent | Escalation


class Dispatcher:
    """Live crew dispatch over one topology and one road router (see module docstring)."""

    def __init__(
        self,
        topology: Topology,
        router: Router,
        crews: Iterable[Crew],
        settings: DispatchSettings | None = None,
    ) -> None:
        self.topology = topology
        self.router = router
        self.settings = settings or DispatchSettings()
        self.crews: dict[str, Crew] = {}
        for crew in crews:
            if crew.crew_id in self.crews:
                raise ValueError(f"crew {crew.crew_id!r} is listed twice")
            self.crews[crew.crew_id] = crew
        self.orders: dict[str, WorkOrder] = {}
        self.faults: dict[str, FaultView] = {}  # by work order id
        self.order_of_fault: dict[str, str] = {}
        self.etas: dict[str, EtaWindow] = {}
        self.routes = RouteBook(self)  # work order → Route, computed on demand
        self.escalator = Escalator(self.settings.escalation)
        self.followups: dict[str, FollowUp] = {}
        self.register = RepeatFaultRegister(topology)
        self._ids = itertools.count(1)
        self._skills_cache: dict[int, frozenset[Skill]] = {}
        self._origins = OriginCache(router)

    # ------------------------------------------------------------------ look-ups
    def crew(self, crew_id: str) -> Crew:
        try:
            return self.crews[crew_id]
        except KeyError:
            raise UnknownCrew(crew_id) from None

    def order(self, work_order_id: str) -> WorkOrder:
        try:
            return self.orders[work_order_id]
        except KeyError:
            raise UnknownWorkOrder(work_order_id) from None

    def order_for_fault(self, fault_id: str) -> WorkOrder | None:
        oid = self.order_of_fault.get(fault_id)
        return self.orders[oid] if oid else None

    def skills_for(self, fault: FaultView) -> frozenset[Skill]:
        if fault.required_skills is not None:
            return fault.required_skills
        if fault.device < 0:
            return frozenset({Skill.LV})
        cached = self._skills_cache.get(fault.device)
        if cached is None:
            cached = required_skills(self.topology, fault.device)
            self._skills_cache[fault.device] = cached
        return cached

    def waiting_orders(self) -> list[WorkOrder]:
        """Open orders no crew has started travelling to (created, or queued behind a job)."""
        out = []
        for o in self.orders.values():
            if o.state == S.CREATED or (
                o.state in (S.ASSIGNED, S.ACCEPTED)
                and o.crew_id
                and self.crews[o.crew_id].current_job != o.work_order_id
            ):
                out.append(o)
        return out

    @property
    def storm_mode(self) -> bool:
        return len(self.waiting_orders()) >= self.settings.storm_threshold

    # ------------------------------------------------------------------ candidates
    def _work_left(self, order: WorkOrder, now: float) -> float:
        """Seconds until the crew on ``order`` is done there (travel left + work left)."""
        fault = self.faults[order.work_order_id]
        if order.state in ON_SITE:
            return work_left_s(fault.device_kind, order.first_time_of(S.ARRIVED), now)
        eta = self.etas.get(order.work_order_id)
        travel_left = max(eta.expected - now, 0.0) if eta else 0.0
        return travel_left + repair_estimate_s(fault.device_kind)

    def _busy_until(self, crew: Crew, now: float) -> tuple[LonLat, float]:
        """Where and in how many seconds a crew becomes free (after its current + queue)."""
        jobs = crew.jobs
        if not jobs:
            return crew.position or crew.depot, 0.0
        last = self.orders[jobs[-1]]
        if last.state in ON_SITE:
            return last.location, self._work_left(last, now)
        eta = self.etas.get(last.work_order_id)
        travel_left = max(eta.expected - now, 0.0) if eta else 0.0
        kind = self.faults[last.work_order_id].device_kind
        return last.location, travel_left + repair_estimate_s(kind)

    def candidates(self, fault: FaultView, now: float) -> list[Candidate]:
        """Crews on shift with the skills for ``fault``, from where they will set off."""
        needed = self.skills_for(fault)
        out = []
        for crew in self.crews.values():
            if not crew.on_shift(now) or not crew.has_skills(needed):
                continue
            origin, ready = self._busy_until(crew, now)
            if ready > 0 and crew.shift.ends_after(now) <= ready:
                continue  # would only be free after its shift has ended
            out.append(Candidate(crew.crew_id, origin, ready))
        return out

    # ------------------------------------------------------------------ faults in
    def on_fault(self, fault: FaultView, now: float, kind: str = "fault") -> list[Event]:
        """A new fault opens a work order and sends the crew that arrives first by road.

        A fault already known updates its facts (customers, critical count); a fault whose
        order was closed is not reopened here (see :meth:`reopen`).
        """
        known = fault.fault_id in self.order_of_fault
        events = self.open_order(fault, now, kind)
        deferred = self.settings.defer_in_storm and fault.critical == 0 and self.storm_mode
        if known or deferred:
            return events  # in a storm the next tick plans all waiting work together
        return events + self.dispatch(self.order_of_fault[fault.fault_id], now)

    def open_order(self, fault: FaultView, now: float, kind: str = "fault") -> list[Event]:
        """Open a work order for a fault without sending anyone yet (batch planning).

        A known fault updates its facts; if the engine moved it to another device before the
        crew got there, the order follows and the crew's ETAs are recomputed.
        """
        known = self.order_of_fault.get(fault.fault_id)
        if known is not None:
            self.faults[known] = fault
            order = self.orders[known]
            if order.state in BEFORE_ARRIVAL and order.location != fault.location:
                order.device, order.location = fault.device, fault.location
                if order.crew_id:
                    return self._refresh_crew(self.crews[order.crew_id], now)
            return []
        oid = f"WO-{next(self._ids):06d}"
        order = WorkOrder(oid, fault.fault_id, fault.device, fault.location, now, kind=kind)
        self.orders[oid] = order
        self.faults[oid] = fault
        self.order_of_fault[fault.fault_id] = oid
        if kind == "fault":
            self.register.add(
                FaultRecord(fault.fault_id, fault.device, fault.first_report_time, fault.customers)
            )
        return [
            DispatchEvent(
                "work_order_created",
                now,
                oid,
                data={"fault": fault.to_dict(), "priority": self.priority(oid, now).to_dict()},
            )
        ]

    def book_customer_visit(
        self, visit_id: str, meter: int, now: float, skills: frozenset[Skill] | None = None
    ) -> list[Event]:
        """A paid electrician visit to one customer: a work order like any other (LV)."""
        grid = self.topology.grid
        view = FaultView(
            fault_id=visit_id,
            device=meter,
            location=grid.location(meter),
            device_kind=Kind.METER,
            customers=1,
            critical=int(self.topology.is_critical(meter)),
            first_report_time=now,
            service_class=ServiceClass.REMOTE,  # a booked visit has the loosest promise
            required_skills=skills or frozenset({Skill.LV}),
        )
        return self.on_fault(view, now, kind="customer_visit")

    def priority(self, work_order_id: str, now: float) -> Priority:
        """Urgency of an order's fault at ``now`` (see :mod:`gridmend.dispatch.priority`)."""
        return priority_of(self.faults[work_order_id], now, self.settings.priority)

    def dispatch(self, work_order_id: str, now: float, *, quiet: bool = False) -> list[Event]:
        """Greedy: give a waiting order to the candidate that arrives first by road.

        A fault with critical customers may pre-empt: a crew still travelling to a job with
        no critical customers is diverted when it gets there sooner than any other choice,
        and its old job goes back to the pool.
        """
        order = self.order(work_order_id)
        if order.state != S.CREATED:
            return []
        fault = self.faults[work_order_id]
        cap = self.settings.greedy_cap_s
        candidates = self.candidates(fault, now)
        try:
            choice = choose_nearest(self.router, fault.location, candidates, cap, self._origins)
        except OutOfCoverageError as err:
            if not self._covered([fault.location])[0]:
                if quiet:
                    return []
                data = {"reason": str(err)}
                return [DispatchEvent("out_of_coverage", now, work_order_id, data=data)]
            # Some crew is off the road network (a depot yard, a GPS glitch): leave it out.
            covered = self._covered([c.origin for c in candidates])
            candidates = [c for c, ok in zip(candidates, covered, strict=True) if ok]
            choice = choose_nearest(self.router, fault.location, candidates, cap)
        if fault.critical > 0 and (choice is None or choice.ready_in_s > 0):
            diverted = self._preempt(order, fault, choice, now)
            if diverted is not None:
                return diverted
        if choice is None:
            if quiet:
                return []
            skills = sorted(str(s) for s in self.skills_for(fault))
            return [DispatchEvent("no_candidate", now, work_order_id, data={"skills": skills})]
        return self._assign(order, self.crews[choice.crew_id], choice, now, "nearest by road")

    def _preempt(
        self, order: WorkOrder, fault: FaultView, best: Choice | None, now: float
    ) -> list[Event] | None:
        """Divert a travelling crew from a non-critical job to a critical fault, if faster."""
        needed = self.skills_for(fault)
        travelling = []
        for crew in self.crews.values():
            current = self.orders.get(crew.current_job) if crew.current_job else None
            if (
                current is None
                or current.state not in BEFORE_ARRIVAL
                or self.faults[current.work_order_id].critical > 0
                or not crew.on_shift(now)
                or not crew.has_skills(needed)
            ):
                continue
            travelling.append(Candidate(crew.crew_id, crew.position or crew.depot))
        if not travelling:
            return None
        cap = min(self.settings.greedy_cap_s, best.arrival_in_s if best else math.inf)
        try:
            choice = choose_nearest(self.router, fault.location, travelling, cap)
        except OutOfCoverageError:
            return None
        if choice is None or (best is not None and choice.arrival_in_s >= best.arrival_in_s):
            return None
        crew = self.crews[choice.crew_id]
        bumped = self.orders[crew.current_job]  # type: ignore[index]
        reason = f"pre-empted by critical fault {fault.fault_id}"
        events: list[Event] = [self._release(bumped, now, reason)]
        events += self._assign(order, crew, choice, now, "critical customers: pre-empts")
        if crew.current_job != order.work_order_id:  # crew had a queue: put this first
            crew.queue.remove(order.work_order_id)
            if crew.current_job is not None:
                crew.queue.insert(0, crew.current_job)
            crew.current_job = order.work_order_id
            events += self._refresh_crew(crew, now)
        events += self.dispatch(bumped.work_order_id, now)  # the bumped job finds a crew again
        return events

    def _assign(
        self, order: WorkOrder, crew: Crew, choice: Choice, now: float, reason: str
    ) -> list[Event]:
        order.transition(S.ASSIGNED, time=now, actor=DISPATCHER, reason=reason)
        order.crew_id = crew.crew_id
        if crew.current_job is None:
            crew.current_job = order.work_order_id
            crew.status = CrewStatus.EN_ROUTE
            queued = False
        else:
            crew.queue.append(order.work_order_id)
            queued = True
        events: list[Event] = [
            DispatchEvent(
                "queued" if queued else "assigned",
                now,
                order.work_order_id,
                crew.crew_id,
                {
                    "staff_number": crew.staff_number,
                    "travel_s": round(choice.travel_s, 1),
                    "ready_in_s": round(choice.ready_in_s, 1),
                    "approximate": choice.approximate,
                    "reason": reason,
                },
            )
        ]
        events += self._refresh_crew(crew, now, {order.work_order_id: choice.travel_s})
        return events

    def _release(self, order: WorkOrder, now: float, reason: str) -> DispatchEvent:
        """Take a not-yet-arrived job away from its crew (no ETA refresh; see release)."""
        crew = self.crews[order.crew_id] if order.crew_id else None
        order.transition(S.CREATED, time=now, actor=DISPATCHER, reason=reason)
        self.etas.pop(order.work_order_id, None)
        self.routes.forget(order.work_order_id)
        if crew is not None:
            self._drop_job(crew, order.work_order_id)
        crew_id = crew.crew_id if crew else None
        return DispatchEvent("released", now, order.work_order_id, crew_id, {"reason": reason})

    def release(self, work_order_id: str, now: float, reason: str) -> list[Event]:
        """Release a job no crew has reached (crew declines, supervisor re-plans); the crew's
        other jobs get fresh ETAs."""
        order = self.order(work_order_id)
        crew = self.crews.get(order.crew_id) if order.crew_id else None
        events: list[Event] = [self._release(order, now, reason)]
        if crew is not None and crew.jobs:
            events += self._refresh_crew(crew, now)
        return events

    def assign_to(self, work_order_id: str, crew_id: str, now: float, reason: str) -> list[Event]:
        """Give a job to a named crew by hand (releasing it from another crew first)."""
        order = self.order(work_order_id)
        crew = self.crew(crew_id)
        if order.crew_id == crew_id:
            return []
        events: list[Event] = []
        if order.crew_id is not None:
            events += self.release(work_order_id, now, reason)
        origin, ready = self._busy_until(crew, now)
        seconds, approximate = self._travel(origin, order.location)
        choice = Choice(crew_id, seconds, ready, approximate)
        return events + self._assign(order, crew, choice, now, reason)

    def _drop_job(self, crew: Crew, oid: str) -> None:
        if crew.current_job == oid:
            crew.current_job = None
            # The next queued job becomes current only once the crew sets off for it.
            if crew.queue:
                crew.current_job = crew.queue.pop(0)
        elif oid in crew.queue:
            crew.queue.remove(oid)
        if crew.current_job is None:
            crew.status = CrewStatus.AVAILABLE
        else:
            current = self.orders[crew.current_job]
            crew.status = CrewStatus.ON_SITE if current.state in ON_SITE else CrewStatus.EN_ROUTE

    # ------------------------------------------------------------------ ETAs
    def _refresh_crew(
        self, crew: Crew, now: float, known: dict[str, float] | None = None
    ) -> list[Event]:
        """Recompute the ETA window of every job on a crew's list (current, then queue).

        ``known`` gives travel times just computed by the assignment (same origin), so a
        fresh assignment does not route the same trip twice.
        """
        events: list[Event] = []
        ready = 0.0
        origin = crew.position or crew.depot
        for oid in crew.jobs:
            order = self.orders[oid]
            fault = self.faults[oid]
            if order.state in ON_SITE:
                ready += self._work_left(order, now)
                origin = order.location
                continue
            if known and math.isfinite(known.get(oid, math.inf)):
                seconds, approximate = known[oid], self.router.approximate
            else:
                seconds, approximate = self._travel(origin, order.location)
            if not math.isfinite(seconds):
                self.etas.pop(oid, None)
                events.append(DispatchEvent("unreachable", now, oid, crew.crew_id))
                continue
            if self.settings.eager_route_geometry and oid == crew.current_job:
                self.route(oid)
            window = eta_window(
                oid,
                crew.crew_id,
                now,
                seconds,
                fault.promise_deadline,
                work_before_s=ready,
                approximate=approximate,
                settings=self.settings.eta,
            )
            self.etas[oid] = window
            events.append(DispatchEvent("eta", now, oid, crew.crew_id, window.to_dict()))
            events += self.escalator.check(order, now, fault.promise_deadline, window)
            ready += seconds + repair_estimate_s(fault.device_kind)
            origin = order.location
        return events

    def _covered(self, points: list[LonLat]) -> list[bool]:
        """Which points the router can place on its road network."""
        snap = getattr(self.router, "snap", None)
        if snap is None:
            return [True] * len(points)
        out = []
        for p in points:
            try:
                snap([p])
                out.append(True)
            except OutOfCoverageError:
                out.append(False)
        return out

    def _travel(self, origin: LonLat, destination: LonLat) -> tuple[float, bool]:
        """Road travel time for one trip (the router's bounded search: cheap per ping);
        inf when either end is off the road network."""
        try:
            found = self.router.nearest([origin], destination)
        except OutOfCoverageError:
            return math.inf, self.router.approximate
        return found.seconds, found.approximate

    def eta_of(self, work_order_id: str) -> EtaWindow | None:
        return self.etas.get(work_order_id)

    def route(self, work_order_id: str) -> Route | None:
        """The road route a crew takes to a job, for the map and the customer tracker.

        From the crew's last fix for its current job, from the previous job's site for a
        queued one; None when no crew has the job or it is on site. Cached per origin.
        """
        order = self.order(work_order_id)
        if order.crew_id is None or order.state not in BEFORE_ARRIVAL:
            return None
        crew = self.crews[order.crew_id]
        jobs = crew.jobs
        if work_order_id not in jobs:
            return None
        k = jobs.index(work_order_id)
        origin = (crew.position or crew.depot) if k == 0 else self.orders[jobs[k - 1]].location
        return self.routes.lookup(work_order_id, origin)

    # ------------------------------------------------------------------ crew input
    def on_gps(self, crew_id: str, lon: float, lat: float, t: float) -> list[Event]:
        """A GPS fix: keep it unless it is older than the last one, then refresh ETAs.

        A fix never changes a job's state — a late ping after "arrived" leaves the job on
        site.
        """
        crew = self.crew(crew_id)
        if not crew.record_fix(lon, lat, t):
            return [DispatchEvent("gps_ignored", t, None, crew_id, {"reason": "older fix"})]
        current = self.orders.get(crew.current_job) if crew.current_job else None
        if current is None or current.state not in BEFORE_ARRIVAL:
            return []
        return self._refresh_crew(crew, t)

    def on_crew_event(
        self,
        crew_id: str,
        work_order_id: str,
        state: WorkOrderState | str,
        t: float,
        *,
        seq: int | None = None,
        position: LonLat | None = None,
        cause: str | None = None,
    ) -> list[Event]:
        """The crew app reports a step of a job (accepted, en_route, arrived, … restored)."""
        crew = self.crew(crew_id)
        order = self.order(work_order_id)
        target = parse_state(state) if isinstance(state, str) else state
        if order.crew_id != crew_id:
            raise CrewConflict(
                f"work order {work_order_id} is assigned to "
                f"{order.crew_id or 'no crew'}, not to crew {crew_id}"
            )
        busy_with = self.orders.get(crew.current_job) if crew.current_job else None
        if (
            target == S.EN_ROUTE
            and order.state in (S.ASSIGNED, S.ACCEPTED)
            and busy_with is not None
            and busy_with is not order
            and busy_with.is_open
        ):
            raise CrewConflict(
                f"crew {crew_id} is still on work order {busy_with.work_order_id} "
                f"({busy_with.state.value}); it cannot set off for {work_order_id}"
            )
        done = order.transition(target, time=t, actor=crew_id, position=position, seq=seq)
        if done is None:
            last = order.ignored[-1]
            return [
                DispatchEvent(
                    "crew_event_ignored", t, work_order_id, crew_id, {"reason": last.reason}
                )
            ]
        if position is not None:
            crew.record_fix(position[0], position[1], t)
        events: list[Event] = [
            DispatchEvent(
                "state",
                t,
                work_order_id,
                crew_id,
                {"from": done.from_state.value, "to": done.to_state.value},
            )
        ]
        if target == S.EN_ROUTE:
            if crew.current_job != work_order_id:
                if work_order_id in crew.queue:
                    crew.queue.remove(work_order_id)
                crew.current_job = work_order_id
            crew.status = CrewStatus.EN_ROUTE
            events += self._refresh_crew(crew, t)
        elif target in ON_SITE:
            crew.status = CrewStatus.ON_SITE
            if position is None:
                crew.record_fix(order.location[0], order.location[1], t)
            self.etas.pop(work_order_id, None)
        elif target in (S.RESTORED, S.CANCELLED, S.MERGED):
            events += self._job_finished(crew, order, t, cause)
        return events

    def _job_finished(
        self, crew: Crew, order: WorkOrder, t: float, cause: str | None
    ) -> list[Event]:
        oid = order.work_order_id
        self.etas.pop(oid, None)
        self._drop_job(crew, oid)
        events: list[Event] = []
        if order.state == S.RESTORED:
            fault = self.faults[oid]
            if order.kind == "fault":
                self.register.add(
                    FaultRecord(
                        fault.fault_id,
                        fault.device,
                        fault.first_report_time,
                        fault.customers,
                        restored_time=t,
                        cause=cause,
                    )
                )
            meters = self._affected_meters(fault)
            self.followups[oid] = FollowUp(oid, fault.device, meters, t)
            events.append(
                DispatchEvent(
                    "follow_up_requested", t, oid, crew.crew_id, {"customers": len(meters)}
                )
            )
        if crew.current_job:
            events += self._refresh_crew(crew, t)
        else:
            events += self.pull(crew.crew_id, t)
        return events

    def pull(self, crew_id: str, now: float) -> list[Event]:
        """A crew has nothing to do: give it the best waiting order at once.

        Best = lowest road travel minus priority bonus (the storm plan's cost) among
        orders no crew has, that the crew has the skills for, within ``fill_cap_s``. One
        search from the crew, so a freed crew never idles until the next tick.
        """
        crew = self.crew(crew_id)
        if crew.jobs or not crew.on_shift(now):
            return []
        waiting = [
            o
            for o in self.orders.values()
            if o.state == S.CREATED
            and crew.has_skills(self.skills_for(self.faults[o.work_order_id]))
        ]
        if not waiting:
            return []
        a = self.settings.assignment
        origin = crew.position or crew.depot
        try:
            travel = self.router.matrix([origin], [o.location for o in waiting], a.fill_cap_s)[0]
        except OutOfCoverageError:
            return []
        bonus = np.array([self.priority(o.work_order_id, now).score for o in waiting])
        cost = np.where(np.isfinite(travel), travel - a.seconds_per_point * bonus, np.inf)
        k = int(np.argmin(cost))
        if not np.isfinite(cost[k]):
            return []
        choice = Choice(crew_id, float(travel[k]), 0.0, self.router.approximate)
        return self._assign(waiting[k], crew, choice, now, "crew free: best waiting order")

    def _affected_meters(self, fault: FaultView) -> np.ndarray:
        """Customers to ask after restoration: all below the device (one for a visit)."""
        if fault.device < 0:
            return np.empty(0, dtype=np.int64)
        if fault.device_kind == Kind.METER:
            return np.array([fault.device], dtype=np.int64)
        try:
            return self.topology.meters_below(fault.device)
        except KeyError:  # a line section or busbar: no hierarchy of its own
            return np.empty(0, dtype=np.int64)

    # ------------------------------------------------------------------ fault updates
    def close_fault(
        self, fault_id: str, state: WorkOrderState | str, now: float, merged_into: str | None = None
    ) -> list[Event]:
        """The inference engine withdrew (cancelled) or merged a fault: end its order."""
        order = self.order_for_fault(fault_id)
        if order is None:
            raise UnknownWorkOrder(f"for fault {fault_id}")
        target = parse_state(state) if isinstance(state, str) else state
        crew = self.crews.get(order.crew_id) if order.crew_id else None
        order.transition(target, time=now, actor=DISPATCHER, reason="fault " + target.value)
        if merged_into is not None:
            order.merged_into = self.order_of_fault.get(merged_into, merged_into)
        events: list[Event] = [
            DispatchEvent("state", now, order.work_order_id, order.crew_id, {"to": target.value})
        ]
        if crew is not None:
            events += self._job_finished(crew, order, now, None)
        return events

    # ------------------------------------------------------------------ follow-up
    def follow_up_answer(
        self, work_order_id: str, answer: CustomerAnswer, now: float
    ) -> FollowUpDecision:
        """Record a customer's answer and return the current decision for the order."""
        try:
            follow = self.followups[work_order_id]
        except KeyError:
            raise UnknownWorkOrder(f"{work_order_id} (no follow-up: not restored)") from None
        follow.record(answer)
        return follow.decide(self.topology, now)

    def reopen(self, decision: FollowUpDecision, now: float) -> list[Event]:
        """Act on a reopen/split decision: a new linked work order for the remaining outage."""
        if decision.decision not in (Decision.REOPEN, Decision.SPLIT):
            return []
        old = self.order(decision.work_order_id)
        device = decision.suspected_device if decision.suspected_device is not None else old.device
        base = self.faults[old.work_order_id]
        view = fault_view_for_device(
            self.topology, device, now, f"{base.fault_id}/{decision.decision.value}-{now:.0f}"
        )
        events = self.on_fault(view, now)
        self.orders[self.order_of_fault[view.fault_id]].reopens = old.work_order_id
        return events

    # ------------------------------------------------------------------ batch
    def reoptimise(self, now: float) -> list[Event]:
        """Storm mode: re-plan every job no crew has reached yet, one next job per crew.

        Committed crews keep their job unless moving them gains more than the hysteresis
        margin (see :class:`~gridmend.dispatch.assignment.AssignmentSettings`).
        """
        candidates: list[Candidate] = []
        crew_masks = []
        for crew in self.crews.values():
            if not crew.on_shift(now):
                continue
            current = self.orders[crew.current_job] if crew.current_job else None
            if current is not None and current.state in BEFORE_ARRIVAL:
                origin, ready, committed = crew.position or crew.depot, 0.0, current.work_order_id
            elif current is not None:
                origin, ready = current.location, self._work_left(current, now)
                committed = crew.queue[0] if crew.queue else None
            else:
                origin, ready, committed = crew.position or crew.depot, 0.0, None
            candidates.append(Candidate(crew.crew_id, origin, ready, committed))
            crew_masks.append(_skill_mask(crew.skills))
        # Jobs of crews outside the plan (off shift, finishing up) stay with them.
        planning = {c.crew_id for c in candidates}
        pool = [
            o
            for o in self.orders.values()
            if o.state in BEFORE_ARRIVAL and (o.crew_id is None or o.crew_id in planning)
        ]
        if not pool:
            return []
        faults = [(o.work_order_id, o.location) for o in pool]
        priorities = [self.priority(o.work_order_id, now).score for o in pool]
        need = np.array([_skill_mask(self.skills_for(self.faults[o.work_order_id])) for o in pool])
        have = np.array(crew_masks, dtype=np.int64).reshape(-1, 1)
        eligible = (need[None, :] & ~have) == 0
        critical = np.array([self.faults[o.work_order_id].critical > 0 for o in pool])
        time_left = np.array([self.faults[o.work_order_id].promise_deadline - now for o in pool])
        try:
            plan = reoptimise(
                self.router,
                candidates,
                faults,
                priorities,
                eligible,
                self.settings.assignment,
                must_serve=critical,
                time_left_s=time_left,
            )
        except OutOfCoverageError:  # plan without the crews and faults off the road network
            rows = np.flatnonzero(self._covered([c.origin for c in candidates]))
            cols = np.flatnonzero(self._covered([loc for _, loc in faults]))
            plan = reoptimise(
                self.router,
                [candidates[i] for i in rows],
                [faults[j] for j in cols],
                [priorities[j] for j in cols],
                eligible[np.ix_(rows, cols)],
                self.settings.assignment,
                must_serve=critical[cols],
                time_left_s=time_left[cols],
            )
        events: list[Event] = []
        planned = {j.fault_id: j for j in plan.jobs}
        touched: set[str] = set()
        # Release every pooled job whose crew changes (or that loses its crew).
        for o in pool:
            job = planned.get(o.work_order_id)
            if o.crew_id is not None and (job is None or job.crew_id != o.crew_id):
                touched.add(o.crew_id)
                events.append(self._release(o, now, "re-optimised (storm mode)"))
        ready_of = {c.crew_id: c.ready_in_s for c in candidates}
        for job in plan.jobs:
            o = self.orders[job.fault_id]
            if o.state == S.CREATED:
                crew = self.crews[job.crew_id]
                ready = ready_of[job.crew_id]
                choice = Choice(crew.crew_id, job.travel_s, ready, self.router.approximate)
                events += self._assign(o, crew, choice, now, "batch re-optimisation")
                touched.discard(crew.crew_id)
        for crew_id in sorted(touched):  # lost a job, kept another: its ETAs moved
            if self.crews[crew_id].jobs:
                events += self._refresh_crew(self.crews[crew_id], now)
        events.append(
            DispatchEvent(
                "reoptimised",
                now,
                data={
                    "jobs": len(plan.jobs),
                    "moved": sum(1 for j in plan.jobs if j.changed),
                    "waiting": len(plan.unassigned),
                },
            )
        )
        return events

    # ------------------------------------------------------------------ clock
    def tick(self, now: float) -> list[Event]:
        """The clock moved to ``now``: re-plan in storm mode, raise escalations, close loops."""
        events: list[Event] = []
        for crew in self.crews.values():  # a crew going home hands back what it has not begun
            if crew.queue and not crew.on_shift(now):
                for oid in list(crew.queue):
                    events.append(self._release(self.orders[oid], now, "crew off shift"))
        if self.storm_mode:
            events += self.reoptimise(now)
        else:
            waiting = [o for o in self.orders.values() if o.state == S.CREATED]
            waiting.sort(key=lambda o: -self.priority(o.work_order_id, now).score)
            for o in waiting:
                events += self.dispatch(o.work_order_id, now, quiet=True)
        for o in self.orders.values():
            if o.state in FINAL_STATES:
                continue
            fault = self.faults[o.work_order_id]
            eta = self.etas.get(o.work_order_id)
            events += self.escalator.check(o, now, fault.promise_deadline, eta)
        for oid, follow in self.followups.items():
            o = self.orders[oid]
            if o.state != S.RESTORED:
                continue
            decision = follow.decide(self.topology, now)
            if decision.decision == Decision.CLOSE:
                o.transition(S.CLOSED, time=now, actor=DISPATCHER, reason=decision.reason)
                events.append(
                    DispatchEvent(
                        "state", now, oid, o.crew_id, {"to": "closed", "reason": decision.reason}
                    )
                )
            elif decision.decision in (Decision.REOPEN, Decision.SPLIT):
                events.append(
                    DispatchEvent(
                        "follow_up_decision",
                        now,
                        oid,
                        o.crew_id,
                        {"decision": decision.to_dict(self.topology.grid.element_ids)},
                    )
                )
        return events

    def snapshot(self, now: float) -> dict[str, object]:
        """JSON-ready state for the dispatcher map: crews, orders, ETAs."""
        return {
            "time": now,
            "storm_mode": self.storm_mode,
            "crews": [c.to_dict(now) for c in self.crews.values()],
            "work_orders": [
                {
                    **o.to_dict(),
                    "eta": self.etas[o.work_order_id].to_dict()
                    if o.work_order_id in self.etas
                    else None,
                    "route": _geojson(self.route(o.work_order_id)),
                }
                for o in self.orders.values()
            ],
        }


class RouteBook(Mapping[str, Route]):
    """Routes by work order, computed on first use and kept while the origin is unchanged.

    ``dispatcher.routes.get(order_id)`` works like a dict but never routes a trip nobody
    looks at.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._cache: dict[str, tuple[LonLat, Route]] = {}

    def lookup(self, work_order_id: str, origin: LonLat) -> Route:
        cached = self._cache.get(work_order_id)
        if cached is not None and cached[0] == origin:
            return cached[1]
        destination = self._dispatcher.orders[work_order_id].location
        route = self._dispatcher.router.eta(origin, destination, geometry=True)
        self._cache[work_order_id] = (origin, route)
        return route

    def forget(self, work_order_id: str) -> None:
        self._cache.pop(work_order_id, None)

    def __getitem__(self, work_order_id: str) -> Route:
        if work_order_id not in self._dispatcher.orders:
            raise KeyError(work_order_id)
        route = self._dispatcher.route(work_order_id)
        if route is None:
            raise KeyError(work_order_id)
        return route

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._cache))

    def __len__(self) -> int:
        return len(self._cache)


def _geojson(route: Route | None) -> dict[str, object] | None:
    return route.geojson() if route is not None else None
