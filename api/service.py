"""The engine service: one in-memory :class:`OutageCentre`, kept durable and published.

The pure engine decides; this shell makes its decisions durable and visible:

- **write-ahead intake** — reports are committed before the engine sees them, so an
  accepted report survives a crash between acknowledgement and inference (a restart
  replays it);
- **one transaction per engine step** — after each input (reports, a crew step, a desk
  assignment, a clock tick) the changed faults, work-order events, escalations, answers
  and every customer :class:`Notification` are written together: a notification exists in
  the outbox exactly when the change that caused it committed;
- **one lock** around the engine: inputs are applied one at a time, in the order they are
  stored, which is what makes the restart replay reproduce the same faults and orders;
- **a change feed** for the dispatcher map's Server-Sent Events.

Restart: the service replays every stored report (grouped as they were taken) and every
tagged work-order input (crew steps, desk assignments, ticks that moved an order) in
their original order through a fresh engine — the engine is deterministic, so fault and
work-order ids come out the same — then writes whatever the database is missing.

Webhooks hook (for the delivery worker): :meth:`EngineService.enqueue_notifications` is the
only place notifications reach the outbox; see its docstring for the row layout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from sqlalchemy.orm import Session

from gridmend.api import repository as api_repo
from gridmend.api.settings import BUNDLED_CREWS, ApiSettings
from gridmend.db.errors import Conflict, DomainError, NotFound
from gridmend.db.migrate import upgrade
from gridmend.db.session import Database
from gridmend.dispatch import repository as repo
from gridmend.dispatch.answers import Answer, AnswerKind
from gridmend.dispatch.centre import OutageCentre, Outcome
from gridmend.dispatch.crews import Crew, ShiftWindow, parse_crews_csv, parse_skills
from gridmend.dispatch.dispatcher import DispatchEvent
from gridmend.dispatch.errors import CrewConflict
from gridmend.dispatch.escalation import Escalation
from gridmend.dispatch.followup import CustomerAnswer
from gridmend.dispatch.inference import FaultStatus
from gridmend.dispatch.lifecycle import BEFORE_ARRIVAL, FINAL_STATES, WorkOrderState
from gridmend.dispatch.notifications import PLAIN_TEXT, Notification
from gridmend.dispatch.planned_outages import PlannedOutage
from gridmend.dispatch.reports import Report, format_time, report_from_row
from gridmend.fixtures import GRIDS
from gridmend.geo.routing import ApproximateRouter, Router, router_for
from gridmend.topology.grid import Grid
from gridmend.topology.loading import load_grid
from gridmend.topology.network import Topology

log = logging.getLogger(__name__)

S = WorkOrderState
#: Crew app actions → the work-order state each asks for (findings: see :meth:`crew_step`).
CREW_ACTIONS: dict[str, WorkOrderState | None] = {
    "accept": S.ACCEPTED,
    "en-route": S.EN_ROUTE,
    "arrive": S.ARRIVED,
    "findings": None,
    "restore": S.RESTORED,
    "close": S.CLOSED,
}
#: Stored photo file suffix → content type (the upload route writes these suffixes).
PHOTO_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
#: Decimal places a customer sees of a crew's position (2 ≈ 1 km: approximate, by design).
CUSTOMER_POSITION_DECIMALS = 2


# ---------------------------------------------------------------------------------- errors
class JobNotFound(NotFound):
    """A crew asked about a job that is not on its list (another crew's job looks absent)."""


class StaleIntent(Conflict):
    """A crew step whose sequence number or state is behind the job: refused, job unchanged."""


class CannotReassign(Conflict):
    """The crew is already on site (or the job is finished): the job stays with it."""


class InvalidInput(DomainError):
    """A value the engine refuses (unknown device, empty window); names the field."""

    status_code = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------------------- time
def to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def to_epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# ---------------------------------------------------------------------------------- change feed
class ChangeFeed:
    """Map changes fanned out to Server-Sent-Event listeners; publish from any thread."""

    def __init__(self, max_queue: int = 1000) -> None:
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict]]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._max_queue = max_queue

    def subscribe(self) -> asyncio.Queue[dict]:
        """A queue of changes for the calling event loop's listener."""
        queue: asyncio.Queue[dict] = asyncio.Queue(self._max_queue)
        with self._lock:
            self._listeners.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict]) -> None:
        with self._lock:
            self._listeners = [(lp, q) for lp, q in self._listeners if q is not queue]

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self, changes: Iterable[dict]) -> None:
        """Number each change and hand it to every listener (a full queue drops it)."""
        items = [{"seq": next(self._ids), **c} for c in changes]
        if not items:
            return
        with self._lock:
            listeners = list(self._listeners)
        for loop, queue in listeners:
            for item in items:
                try:
                    loop.call_soon_threadsafe(_offer, queue, item)
                except RuntimeError:  # the listener's loop has closed
                    self.unsubscribe(queue)
                    break


def _offer(queue: asyncio.Queue[dict], item: dict) -> None:
    if not queue.full():
        queue.put_nowait(item)


# ---------------------------------------------------------------------------------- intake
@dataclass(frozen=True)
class Intake:
    """One validated report and where its customer wants progress pushed."""

    report: Report
    callback_url: str | None = None


@dataclass(frozen=True)
class IntakeResult:
    report_id: str
    answer: dict[str, Any]
    duplicate: bool
    tracking_token: str | None

    @property
    def rejected(self) -> bool:
        return self.answer.get("answer") == AnswerKind.REJECTED.value


def report_payload(report: Report) -> dict[str, Any]:
    """The stored form of a validated report (read back by :func:`report_from_row`)."""
    return {
        "report_id": report.report_id,
        "time": format_time(report.time),
        "channel": report.channel.value,
        "meter_id": report.meter_id,
        "lon": report.lon,
        "lat": report.lat,
        "crs": report.crs,
        "scope": report.scope.value if report.scope else None,
        "text": report.text,
        "contact": report.contact,
    }


def plain_text(note: Notification) -> str:
    """The customer's line for a notification (times in UTC, HH:MM)."""
    data = note.data

    def hhmm(epoch: object) -> str:
        return to_datetime(float(epoch)).strftime("%H:%M UTC") if epoch is not None else "?"

    window = data.get("eta_window")
    eta = f"{hhmm(window[0])}–{hhmm(window[1])}" if isinstance(window, list) else "soon"
    text = PLAIN_TEXT[note.type]
    return text.format(
        crew=data.get("crew") or "",
        eta=eta,
        cause=data.get("cause") or "",
        expected=hhmm(data.get("expected_completion")),
    )


@dataclass
class _Pending:
    """In-memory bookkeeping to apply once the transaction that wrote it has committed."""

    fault_sig: dict[str, tuple] = field(default_factory=dict)
    fault_members: dict[str, int] = field(default_factory=dict)
    order_events: dict[str, int] = field(default_factory=dict)
    crew_status: dict[str, str] = field(default_factory=dict)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Notification] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------- the service
class EngineService:
    """The running engine behind the HTTP API (see module docstring)."""

    def __init__(self, settings: ApiSettings, database: Database | None = None) -> None:
        self.settings = settings
        self.clock: Callable[[], float] = settings.clock
        self.db = database or Database(settings.database_url)
        if settings.migrate:
            upgrade(self.db.engine)
        self.lock = threading.RLock()
        self.feed = ChangeFeed()
        topology, router = self._load_grid()
        crews = self._load_crews(topology)
        self.centre = OutageCentre(topology, router, crews)
        self.topology = topology
        self.grid_name = topology.grid.name
        # What the database holds, so each step writes only what changed.
        self._fault_sig: dict[str, tuple] = {}
        self._fault_members: dict[str, int] = {}
        self._order_events: dict[str, int] = {}
        self._crew_status: dict[str, str] = {}
        self._areas: dict[tuple[str, int], shapely.Geometry] = {}
        self.escalations: list[dict[str, Any]] = []
        self.timelines: dict[str, list[Notification]] = {}
        self._timeline_ids: set[str] = set()
        self.callbacks: dict[str, str] = {}
        self.tracking_urls: dict[str, str] = {}
        self.photos: dict[str, list[dict[str, Any]]] = {}
        self._rebuild()

    # ------------------------------------------------------------------ start-up
    def _load_grid(self) -> tuple[Topology, Router]:
        """The grid (bundled, a file, or a stored snapshot) and the best router for it."""
        from gridmend.geo.repository import (
            UnknownRoadNetwork,
            latest_road_network,
            load_road_network,
        )
        from gridmend.topology.repository import latest_snapshot, load_snapshot_grid

        spec = self.settings.grid
        if spec == "db" or spec.startswith("db:"):
            name = spec[3:] or None
            with self.db.unit_of_work() as session:
                snapshot = latest_snapshot(session, name)
                grid = load_snapshot_grid(session, snapshot.id)
        else:
            grid = _bundled_grid(spec)
        topology = Topology(grid)
        self.road_graph = None
        router: Router = ApproximateRouter()
        try:
            with self.db.unit_of_work() as session:
                network = latest_road_network(session)
                graph = load_road_network(session, network.id)
            meters = topology.meters
            points = list(zip(grid.lon[meters].tolist(), grid.lat[meters].tolist(), strict=True))
            router = router_for(graph, points)
            if not isinstance(router, ApproximateRouter):
                self.road_graph = graph
        except UnknownRoadNetwork:
            pass
        return topology, router

    def _load_crews(self, topology: Topology) -> list[Crew]:
        """Crews from the given CSV, else the database, else the bundled roster; stored."""
        csv_path = self.settings.crews
        crews: list[Crew] = []
        if csv_path is None:
            with self.db.unit_of_work() as session:
                crews = [_engine_crew(row) for row in repo.all_crews(session)]
            bundled = BUNDLED_CREWS.get(self.settings.grid)
            if not crews and bundled is not None:
                csv_path = bundled
        if csv_path is not None:
            crews = parse_crews_csv(csv_path.read_text(encoding="utf-8"), str(csv_path))
        if not crews:
            raise DomainError(
                f"no crews: pass a crew CSV for grid {self.settings.grid!r} (--crews)"
            )
        with self.db.unit_of_work() as session:
            for crew in crews:
                repo.save_crew(session, _crew_spec(crew))
        return crews

    def _rebuild(self) -> None:
        """Replay the stored history through the fresh engine (see module docstring)."""
        with self.db.unit_of_work() as session:
            reports = repo.reports_in_arrival_order(session)
            tagged = repo.work_order_events_with_details(session)
            state = repo.load_restart_state(session, to_datetime(self.clock()))
            progress = repo.work_order_progress(session)
            report_rows = [
                (r.received_at, r.id, r.payload, r.callback_url, r.answer is None) for r in reports
            ]
            inputs = _tagged_inputs(tagged)
            escalations = [_escalation_view(e) for e in state.open_escalations]
            fixes = [(c.id, c.position, c.last_fix_at) for c in state.crews]
            planned = [
                PlannedOutage(
                    p.id,
                    to_epoch(p.starts_at),
                    to_epoch(p.ends_at),
                    tuple(p.devices or ()),
                    p.area,
                    p.title or "",
                )
                for p in state.planned_outages
            ]
        for outage in planned:
            try:
                self.centre.engine.announce_planned(outage)
            except ValueError as err:
                log.warning("planned outage %s not re-announced: %s", outage.planned_id, err)
        timeline: list[tuple[float, int, str, Any]] = []
        unanswered: set[str] = set()
        for group_time, rows in itertools.groupby(report_rows, key=lambda r: r[0]):
            batch = []
            for _, pk, payload, callback, pending in rows:
                try:
                    report = report_from_row(payload)
                except Exception as err:  # a row stored by another tool in another shape
                    log.warning("stored report %s not replayed: %s", pk, err)
                    continue
                batch.append(report)
                if callback:
                    self.callbacks[report.report_id] = callback
                if pending:
                    unanswered.add(report.report_id)
                rating = (payload or {}).get("rating")
                if rating:
                    timeline.append((float(rating.get("wall", 0.0)), 1, "rating", rating))
            timeline.append((to_epoch(group_time), 0, "reports", batch))
        for n, (wall, kind, data) in enumerate(inputs):
            timeline.append((wall, 2 + n, kind, data))
        timeline.sort(key=lambda item: (item[0], item[1]))
        answers: list[Answer] = []
        notes: list[Notification] = []
        for _, _, kind, data in timeline:
            outcome = self._replay_one(kind, data)
            if kind == "reports":
                answers += [a for a in outcome.answers if a.report_id in unanswered]
            notes += outcome.notifications
        for crew_id, position, at in fixes:
            if position is not None and at is not None and crew_id in self.centre.dispatcher.crews:
                self.centre.gps(crew_id, position.x, position.y, to_epoch(at))
        self._record_timeline(notes)
        self._rebuild_photos(inputs)
        self.escalations = escalations
        self._order_events = {oid: max(0, n - 1) for oid, n in progress.items()}
        # Write what the database is missing (a crash between two transactions).
        with self.db.unit_of_work() as session:
            pending = self._persist(session, Outcome(), None, answers)
            customers = [n for n in notes if n.report_id in unanswered]
            self.enqueue_notifications(session, customers)
        self._apply(pending)

    def _rebuild_photos(self, inputs: Sequence[tuple[float, str, dict[str, Any]]]) -> None:
        """Photos that crew steps referenced, found again in the data folder by their hash."""
        folder = self.settings.data_dir / "photos"
        for _, kind, data in inputs:
            if kind != "crew":
                continue
            for digest in data.get("photos") or ():
                found = sorted((folder / digest[:2]).glob(f"{digest}.*"))
                if not found:
                    continue
                suffix = found[0].suffix.lstrip(".")
                listed = self.photos.setdefault(data["work_order_id"], [])
                if not any(p["sha256"] == digest for p in listed):
                    listed.append(
                        {
                            "sha256": digest,
                            "content_type": PHOTO_CONTENT_TYPES.get(suffix, "image/" + suffix),
                            "size": found[0].stat().st_size,
                            "work_order_id": data["work_order_id"],
                        }
                    )

    def _replay_one(self, kind: str, data: Any) -> Outcome:
        centre = self.centre
        try:
            if kind == "reports":
                return centre.take_reports(data) if data else Outcome()
            if kind == "crew":
                position = (data["lon"], data["lat"]) if data.get("lon") is not None else None
                return centre.crew_event(
                    data["crew_id"],
                    data["work_order_id"],
                    data["state"],
                    data["t"],
                    seq=data.get("seq"),
                    position=position,
                    cause=data.get("cause"),
                    expected_completion=data.get("expected_completion"),
                )
            if kind == "assign":
                return self._assign_in_engine(
                    data["work_order_id"], data["crew_id"], data["t"], data.get("actor", "desk")
                )
            if kind == "tick":
                return centre.tick(data["t"])
            if kind == "rating":
                return self._rate_in_engine(data)
        except Exception as err:  # history that no longer applies is skipped, not fatal
            log.warning("replay of %s input skipped: %s", kind, err)
        return Outcome()

    # ------------------------------------------------------------------ persistence
    def _persist(
        self,
        session: Session,
        outcome: Outcome,
        tag: dict[str, Any] | None,
        answers: Sequence[Answer] = (),
    ) -> _Pending:
        """Write every change since the last step; return the bookkeeping to apply on commit."""
        pending = _Pending()
        engine = self.centre.engine
        dispatcher = self.centre.dispatcher
        saved_faults = set(self._fault_sig)
        # Changed faults and their new members are written in a few batch statements.
        fault_states: list[repo.FaultState] = []
        new_members: list[tuple[str, Sequence[str]]] = []
        for fault_id, fault in engine.faults.items():
            sig = (fault.status, int(fault.device), len(fault.report_ids), fault.merged_into)
            if self._fault_sig.get(fault_id) == sig:
                continue
            order = dispatcher.order_for_fault(fault_id)
            eta = dispatcher.eta_of(order.work_order_id) if order else None
            fault_states.append(
                repo.FaultState(
                    id=fault_id,
                    suspected_device=self.topology.grid.element_ids[int(fault.device)],
                    status=fault.status,
                    confidence=float(engine.confidence(fault)),
                    customer_count=int(engine.customer_count(fault)),
                    critical_count=len(engine.critical_customers(fault)),
                    area=self.outage_area(fault_id) if fault.status in FaultStatus.ACTIVE else None,
                    first_report_at=to_datetime(fault.first_report_time),
                    eta=to_datetime(eta.expected) if eta else None,
                )
            )
            done = self._fault_members.get(fault_id, 0)
            if len(fault.report_ids) > done:
                new_members.append((fault_id, fault.report_ids[done:]))
            pending.fault_sig[fault_id] = sig
            pending.fault_members[fault_id] = len(fault.report_ids)
            pending.changes.append({"kind": "fault", "id": fault_id, "status": fault.status})
            saved_faults.add(fault_id)
        repo.save_faults(session, fault_states)
        repo.add_fault_members_many(session, new_members)
        for oid, order in dispatcher.orders.items():
            done = self._order_events.get(oid)
            if done is None:
                if order.fault_id not in saved_faults:
                    continue  # a customer visit: not a fault the database knows
                repo.create_work_order(
                    session,
                    oid,
                    order.fault_id,
                    repo.Step(
                        actor="dispatcher",
                        at=to_datetime(order.created_at),
                        lon=order.location[0],
                        lat=order.location[1],
                    ),
                )
                done = 0
                # Remember the order exists even before its first event (no crew free yet),
                # or the next step would try to create it again.
                pending.order_events[oid] = 0
            if len(order.events) <= done:
                continue
            for step in order.events[done:]:
                details: dict[str, Any] = {"sender_seq": step.sender_seq}
                if tag:
                    details.update(tag)
                repo.record_work_order_event(
                    session,
                    oid,
                    step.to_state.value,
                    repo.Step(
                        actor=step.actor,
                        at=to_datetime(step.time),
                        lon=step.position[0] if step.position else None,
                        lat=step.position[1] if step.position else None,
                        note=step.reason or None,
                        details=details,
                    ),
                    crew_id=order.crew_id if step.to_state == S.ASSIGNED else None,
                )
            pending.order_events[oid] = len(order.events)
            pending.changes.append(
                {"kind": "work_order", "id": oid, "state": order.state.value, "crew": order.crew_id}
            )
        open_kinds = {(e["work_order_id"], e["type"]) for e in self.escalations}
        for event in outcome.events:
            if not isinstance(event, Escalation):
                continue
            if (event.work_order_id, event.type.value) in open_kinds:
                continue
            order = dispatcher.orders.get(event.work_order_id)
            fault_id = order.fault_id if order and order.fault_id in saved_faults else None
            row = repo.record_escalation(
                session,
                event.type.value,
                fault_id=fault_id,
                work_order_id=event.work_order_id if order else None,
                details={"reason": event.reason, "crew_id": event.crew_id},
                at=to_datetime(event.time),
            )
            view = _escalation_view(row)
            pending.escalations.append(view)
            open_kinds.add((event.work_order_id, event.type.value))
            pending.changes.append({"kind": "escalation", "id": str(row.id), "type": view["type"]})
        repo.save_answers(
            session,
            [
                (
                    a.report_id,
                    a.as_dict(),
                    a.meter_id,
                    a.fault_id if a.fault_id in saved_faults else None,
                )
                for a in answers
            ],
            inferred_at=to_datetime(self.clock()),
        )
        now = self.clock()
        for crew in dispatcher.crews.values():
            status = crew.status_at(now).value
            if self._crew_status.get(crew.crew_id) != status:
                repo.set_crew_status(session, crew.crew_id, status)
                pending.crew_status[crew.crew_id] = status
                pending.changes.append({"kind": "crew", "id": crew.crew_id, "status": status})
        pending.notes = list(outcome.notifications)
        return pending

    def _apply(self, pending: _Pending) -> None:
        """The transaction committed: the database now holds what ``pending`` describes."""
        self._fault_sig.update(pending.fault_sig)
        self._fault_members.update(pending.fault_members)
        self._order_events.update(pending.order_events)
        self._crew_status.update(pending.crew_status)
        self.escalations += pending.escalations
        self._record_timeline(pending.notes)
        self.feed.publish(pending.changes)

    def _record_timeline(self, notes: Iterable[Notification]) -> None:
        for note in notes:
            if note.report_id is None or note.event_id in self._timeline_ids:
                continue
            self._timeline_ids.add(note.event_id)
            self.timelines.setdefault(note.report_id, []).append(note)

    def _step(self, outcome: Outcome, tag: dict[str, Any] | None, answers=()) -> Outcome:
        """Persist one engine step with its outbox rows in one transaction, then publish."""
        with self.db.unit_of_work() as session:
            pending = self._persist(session, outcome, tag, answers)
            self.enqueue_notifications(session, outcome.notifications)
        self._apply(pending)
        return outcome

    # ------------------------------------------------------------------ outbox hook
    def enqueue_notifications(self, session: Session, notes: Sequence[Notification]) -> int:
        """Write notifications to the outbox in the caller's transaction (the webhooks hook).

        The notifications someone will receive go in one batch through
        :func:`gridmend.api.webhooks.enqueue_notifications` with their report's
        ``callback_url`` (if the customer gave one) and tracking link (known for reports
        taken since this process started): one row for the callback (``event_id`` = the
        notification's stable id) and one per subscription wanting its type. Replayed
        notifications add nothing. Returns the rows written.
        """
        from gridmend.api.webhooks import Outgoing, enqueue_notifications

        outgoing: list[Outgoing] = []
        wanted: dict[str, bool] = {}  # event type → has a subscriber (asked once per step)
        for note in notes:
            rid = note.report_id or ""
            kind = note.type.value
            if kind not in wanted:
                wanted[kind] = bool(api_repo.subscriptions_for(session, kind))
            if not wanted[kind] and not self.callbacks.get(rid):
                continue  # nobody to deliver to: no outbox row
            outgoing.append(Outgoing(note, self.callbacks.get(rid), self.tracking_urls.get(rid)))
        # One batch: three statements per step, not three per notification.
        return len(enqueue_notifications(session, outgoing)) if outgoing else 0

    # ------------------------------------------------------------------ intake
    def take_reports(self, items: Sequence[Intake], base_url: str = "") -> list[IntakeResult]:
        """Commit the reports, answer them, then store answers, faults and outbox rows."""
        if not items:
            return []
        with self.lock:
            now = self.clock()
            received = to_datetime(now)
            incoming = [
                repo.IncomingReport.of(
                    i.report,
                    report_payload(i.report),
                    callback_url=i.callback_url,
                    received_at=received,
                )
                for i in items
            ]
            with self.db.unit_of_work() as session:
                stored = repo.record_reports(session, incoming, now=received)
            fresh = [i for i, s in zip(items, stored, strict=True) if s.created]
            for item in fresh:
                if item.callback_url:
                    self.callbacks[item.report.report_id] = item.callback_url
            outcome = self.centre.take_reports([i.report for i in fresh])
            answered = {a.report_id: a for a in outcome.answers}
            with self.db.unit_of_work() as session:
                pending = self._persist(session, outcome, None, outcome.answers)
                trackable = []
                for item in items:
                    rid = item.report.report_id
                    answer = answered.get(rid) or self.centre.engine.answers.get(rid)
                    if answer is not None and answer.kind != AnswerKind.REJECTED:
                        trackable.append(rid)
                tokens = api_repo.create_tracking_tokens(
                    session,
                    trackable,
                    ttl=timedelta(days=self.settings.tracking_ttl_days),
                    now=received,
                )
                for rid, token in tokens.items():
                    self.tracking_urls.setdefault(rid, f"{base_url}/v1/track/{token}")
                self.enqueue_notifications(session, outcome.notifications)
            self._apply(pending)
        results = []
        seen: set[str] = set()
        for item, stored_row in zip(items, stored, strict=True):
            rid = item.report.report_id
            answer = answered.get(rid) or self.centre.engine.answers.get(rid)
            body = answer.as_dict() if answer else (stored_row.answer or {"answer": "pending"})
            results.append(
                IntakeResult(rid, body, not stored_row.created or rid in seen, tokens.get(rid))
            )
            seen.add(rid)
        return results

    # ------------------------------------------------------------------ crews
    def crew_jobs(self, crew_id: str) -> list[dict[str, Any]]:
        """A crew's jobs: current first, then its queue, then restored ones to close."""
        with self.lock:
            dispatcher = self.centre.dispatcher
            crew = dispatcher.crew(crew_id)
            ids = list(crew.jobs)
            ids += [
                oid
                for oid, o in dispatcher.orders.items()
                if o.crew_id == crew_id and o.state == S.RESTORED and oid not in ids
            ]
            return [self.job_view(oid) for oid in ids]

    def job_view(self, work_order_id: str) -> dict[str, Any]:
        """A work order as the crew app and the desk see it."""
        with self.lock:
            dispatcher = self.centre.dispatcher
            order = dispatcher.order(work_order_id)
            fault = dispatcher.faults.get(work_order_id)
            eta = dispatcher.eta_of(work_order_id)
            crew = dispatcher.crews.get(order.crew_id) if order.crew_id else None
            device = self.topology.grid.element_ids[order.device] if order.device >= 0 else None
            return {
                "work_order_id": order.work_order_id,
                "fault_id": order.fault_id,
                "state": order.state.value,
                "crew_id": order.crew_id,
                "staff_number": crew.staff_number if crew else None,
                "device_id": device,
                "device_kind": fault.device_kind.value if fault else None,
                "location": {"lon": order.location[0], "lat": order.location[1]},
                "customers": fault.customers if fault else None,
                "critical_customers": fault.critical if fault else None,
                "priority": round(dispatcher.priority(work_order_id, self.centre.now).score, 2)
                if fault and order.is_open
                else None,
                "eta": eta.to_dict() if eta else None,
                "last_seq": order.last_seq,
                "created_at": order.created_at,
                "events": [e.to_dict() for e in order.events],
                "photos": list(self.photos.get(work_order_id, [])),
            }

    def crew_step(
        self,
        crew_id: str,
        work_order_id: str,
        action: str,
        *,
        seq: int,
        at: float | None = None,
        position: tuple[float, float] | None = None,
        cause: str | None = None,
        expected_completion: float | None = None,
        stage: str | None = None,
        photos: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Move a crew's own job one step; stale or foreign intents are refused with why."""
        with self.lock:
            now = self.clock() if at is None else at
            order = self.centre.dispatcher.orders.get(work_order_id)
            if order is None or order.crew_id != crew_id:
                raise JobNotFound(f"crew {crew_id} has no job {work_order_id!r}")
            if action not in CREW_ACTIONS:
                raise InvalidInput(f"unknown crew action {action!r}", "action")
            target = CREW_ACTIONS[action]
            if target is None:  # findings: diagnosing first, then repairing
                wanted = stage or ("repairing" if order.state == S.DIAGNOSING else "diagnosing")
                target = S(wanted)
            for digest in photos:
                if not any(p["sha256"] == digest for p in self.photos.get(work_order_id, [])):
                    raise InvalidInput(f"photos: {digest!r} is not uploaded for this job", "photos")
            outcome = self.centre.crew_event(
                crew_id,
                work_order_id,
                target,
                now,
                seq=seq,
                position=position,
                cause=cause,
                expected_completion=expected_completion,
            )
            ignored = [
                e
                for e in outcome.events
                if isinstance(e, DispatchEvent) and e.type == "crew_event_ignored"
            ]
            if ignored:
                reason = ignored[0].data.get("reason")
                raise StaleIntent(f"work order {work_order_id}: step refused as stale: {reason}")
            tag = {
                "input": "crew",
                "input_id": uuid.uuid4().hex,
                "wall": self.clock(),
                "crew_id": crew_id,
                "work_order_id": work_order_id,
                "state": target.value,
                "t": now,
                "seq": seq,
                "lon": position[0] if position else None,
                "lat": position[1] if position else None,
                "cause": cause,
                "expected_completion": expected_completion,
                "photos": list(photos),
            }
            self._step(outcome, tag)
            return self.job_view(work_order_id)

    def crew_positions(self, crew_id: str, fixes: Sequence[repo.GpsFix]) -> dict[str, Any]:
        """Batched GPS pings (device time): the track is stored, the newest fix moves ETAs."""
        with self.lock:
            self.centre.dispatcher.crew(crew_id)
            outcome = Outcome()
            kept = 0
            for fix in sorted(fixes, key=lambda f: f.at):
                step = self.centre.gps(crew_id, fix.lon, fix.lat, to_epoch(fix.at))
                kept += not any(
                    isinstance(e, DispatchEvent) and e.type == "gps_ignored" for e in step.events
                )
                outcome.extend(step)
            with self.db.unit_of_work() as session:
                repo.record_crew_fixes(session, crew_id, fixes)
                pending = self._persist(session, outcome, None)
                self.enqueue_notifications(session, outcome.notifications)
            pending.changes.append({"kind": "crew", "id": crew_id, "status": "moved"})
            self._apply(pending)
            return {"received": len(fixes), "newer_than_last_fix": kept}

    def add_photo(self, work_order_id: str, crew_id: str, meta: dict[str, Any]) -> None:
        with self.lock:
            order = self.centre.dispatcher.orders.get(work_order_id)
            if order is None or order.crew_id != crew_id:
                raise JobNotFound(f"crew {crew_id} has no job {work_order_id!r}")
            listed = self.photos.setdefault(work_order_id, [])
            if not any(p["sha256"] == meta["sha256"] for p in listed):
                listed.append(meta)

    # ------------------------------------------------------------------ desk
    def _assign_in_engine(self, work_order_id: str, crew_id: str, now: float, actor: str):
        """Give a job to a crew by hand (reassigning it if another crew had it).

        The dispatcher's own hand-assignment, so ETAs and queues behave exactly as for an
        automatic one; the centre turns its events into the customers' notifications.
        """
        dispatcher = self.centre.dispatcher
        order = dispatcher.order(work_order_id)
        crew = dispatcher.crew(crew_id)
        if order.state not in BEFORE_ARRIVAL:
            raise CannotReassign(
                f"work order {work_order_id} is {order.state.value}; "
                "only a job no crew has reached can be (re)assigned"
            )
        needed = dispatcher.skills_for(dispatcher.faults[work_order_id])
        if not crew.has_skills(needed):
            lacking = ", ".join(sorted(s.value for s in needed - crew.skills))
            raise CrewConflict(f"crew {crew_id} lacks the skills this job needs: {lacking}")
        return self.centre.assign(work_order_id, crew_id, now, f"assigned by {actor}")

    def assign(self, work_order_id: str, crew_id: str, actor: str) -> dict[str, Any]:
        with self.lock:
            now = max(self.clock(), self.centre.now)
            outcome = self._assign_in_engine(work_order_id, crew_id, now, actor)
            tag = {
                "input": "assign",
                "input_id": uuid.uuid4().hex,
                "wall": self.clock(),
                "work_order_id": work_order_id,
                "crew_id": crew_id,
                "t": now,
                "actor": actor,
            }
            self._step(outcome, tag)
            return self.job_view(work_order_id)

    def work_orders(self, state: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for oid, order in self.centre.dispatcher.orders.items():
                if state == "open" and order.state in FINAL_STATES:
                    continue
                if state not in (None, "open", "all") and order.state.value != state:
                    continue
                view = self.job_view(oid)
                view.pop("events")
                out.append(view)
            return out

    def announce_planned(
        self,
        outage_id: str,
        *,
        devices: Sequence[str],
        starts: float,
        ends: float,
        area: shapely.Geometry | None,
        title: str,
    ) -> dict[str, Any]:
        with self.lock:
            outage = PlannedOutage(outage_id, starts, ends, tuple(devices), area, title)
            try:
                customers = self.centre.engine.announce_planned(outage)
            except ValueError as err:
                raise InvalidInput(str(err), "devices") from None
            with self.db.unit_of_work() as session:
                repo.save_planned_outage(
                    session,
                    outage_id,
                    devices=list(devices),
                    starts_at=to_datetime(starts),
                    ends_at=to_datetime(ends),
                    area=area,
                    title=title or None,
                )
            return {"id": outage_id, "customers": customers, "starts": starts, "ends": ends}

    # ------------------------------------------------------------------ customers
    def _fault_of_report(self, report_id: str) -> str | None:
        answer = self.centre.engine.answers.get(report_id)
        fault_id = answer.fault_id if answer else None
        faults = self.centre.engine.faults
        hops = 0
        while fault_id in faults and faults[fault_id].merged_into and hops < 32:
            fault_id = faults[fault_id].merged_into
            hops += 1
        return fault_id

    def tracking(self, report_id: str) -> dict[str, Any]:
        """The customer's parcel-style view of one report."""
        with self.lock:
            answer = self.centre.engine.answers.get(report_id)
            fault_id = self._fault_of_report(report_id)
            dispatcher = self.centre.dispatcher
            order = dispatcher.order_for_fault(fault_id) if fault_id else None
            steps = [
                {
                    "id": n.event_id,
                    "type": n.type.value,
                    "time": n.time,
                    "at": format_time(n.time),
                    "text": plain_text(n),
                }
                for n in sorted(self.timelines.get(report_id, []), key=lambda n: n.time)
            ]
            crew_view = None
            if order is not None and order.crew_id and order.state in BEFORE_ARRIVAL:
                crew = dispatcher.crews[order.crew_id]
                if crew.current_job == order.work_order_id and crew.position:
                    crew_view = {
                        "staff_number": crew.staff_number,
                        "approximate_position": {
                            "lon": round(crew.position[0], CUSTOMER_POSITION_DECIMALS),
                            "lat": round(crew.position[1], CUSTOMER_POSITION_DECIMALS),
                        },
                    }
            eta = dispatcher.eta_of(order.work_order_id) if order else None
            return {
                "report_id": report_id,
                "answer": answer.kind.value if answer else "pending",
                "status": order.state.value if order else (answer.kind.value if answer else None),
                "eta_window": [eta.earliest, eta.latest] if eta else None,
                "timeline": steps,
                "crew": crew_view,
                "can_rate": order is not None and order.state in (S.RESTORED, S.CLOSED),
            }

    def _rate_in_engine(self, data: dict[str, Any]) -> Outcome:
        dispatcher = self.centre.dispatcher
        fault_id = self._fault_of_report(data["report_id"])
        order = dispatcher.order_for_fault(fault_id) if fault_id else None
        answer = self.centre.engine.answers.get(data["report_id"])
        index = self.topology.grid.index
        if (
            order is None
            or order.work_order_id not in dispatcher.followups
            or answer is None
            or answer.meter_id not in index
        ):
            return Outcome()
        meter = index[answer.meter_id]
        said = CustomerAnswer(meter, bool(data["power_back"]), data["t"], data.get("stars"))
        _, outcome = self.centre.follow_up(order.work_order_id, [said], data["t"])
        return outcome

    def rate(
        self, report_id: str, *, stars: int, power_back: bool, comment: str | None
    ) -> dict[str, Any]:
        """A customer's follow-up: stored with the report; "still no power" can reopen."""
        with self.lock:
            now = max(self.clock(), self.centre.now)
            data = {
                "report_id": report_id,
                "stars": stars,
                "power_back": power_back,
                "comment": comment,
                "t": now,
                "wall": self.clock(),
            }
            outcome = self._rate_in_engine(data)
            with self.db.unit_of_work() as session:
                repo.record_rating(session, report_id, data)
                pending = self._persist(session, outcome, {"input": "rating-reopen", **data})
                self.enqueue_notifications(session, outcome.notifications)
            self._apply(pending)
            return {"report_id": report_id, "stars": stars, "power_back": power_back}

    # ------------------------------------------------------------------ clock
    def tick(self, now: float | None = None) -> Outcome:
        """Time passes for the engine: re-judgement, dispatch of waiting jobs, escalations."""
        with self.lock:
            now = self.clock() if now is None else now
            outcome = self.centre.tick(now)
            tag = {"input": "tick", "input_id": uuid.uuid4().hex, "wall": self.clock(), "t": now}
            return self._step(outcome, tag)

    # ------------------------------------------------------------------ map data
    def outage_area(self, fault_id: str) -> shapely.Geometry:
        fault = self.centre.engine.faults[fault_id]
        key = (fault_id, int(fault.device))
        area = self._areas.get(key)
        if area is None:
            area = self.centre.engine.outage_area(fault)
            if area.geom_type not in ("Polygon", "MultiPolygon"):
                area = area.buffer(0.0005)
            self._areas[key] = area
        return area

    def close(self) -> None:
        self.db.dispose()


# ---------------------------------------------------------------------------------- helpers
_GRIDS: dict[str, Grid] = {}
_GRIDS_LOCK = threading.Lock()


def _bundled_grid(spec: str) -> Grid:
    """Load a grid; bundled ones once per process (a Topology never changes its Grid)."""
    if spec not in GRIDS:
        return load_grid(spec)
    with _GRIDS_LOCK:
        if spec not in _GRIDS:
            _GRIDS[spec] = load_grid(spec)
        return _GRIDS[spec]


def _crew_spec(crew: Crew) -> repo.CrewSpec:
    shift = crew.shift
    absolute = not shift.daily
    return repo.CrewSpec(
        id=crew.crew_id,
        staff_number=crew.staff_number,
        members=crew.members,
        skills=tuple(sorted(s.value for s in crew.skills)),
        vehicle=crew.vehicle or None,
        depot_lon=crew.depot[0],
        depot_lat=crew.depot[1],
        shift_start=to_datetime(shift.start) if absolute else None,
        shift_end=to_datetime(shift.end) if absolute else None,
    )


def _engine_crew(row: Any) -> Crew:
    """A stored crew as the engine's :class:`Crew` (no shift stored: always on shift)."""
    shift = (
        ShiftWindow(to_epoch(row.shift_start), to_epoch(row.shift_end))
        if row.shift_start is not None and row.shift_end is not None
        else ShiftWindow.always()
    )
    depot = (row.depot.x, row.depot.y) if row.depot is not None else (0.0, 0.0)
    return Crew(
        crew_id=row.id,
        staff_number=row.staff_number,
        skills=parse_skills(";".join(row.skills or ())),
        depot=depot,
        shift=shift,
        members=tuple(row.members or ()),
        vehicle=row.vehicle or "",
    )


def _escalation_view(row: Any) -> dict[str, Any]:
    details = row.details or {}
    return {
        "id": row.id,
        "type": row.reason,
        "level": row.level,
        "fault_id": row.fault_id,
        "work_order_id": row.work_order_id,
        "reason": details.get("reason"),
        "time": to_epoch(row.at),
    }


def _tagged_inputs(events: Sequence[Any]) -> list[tuple[float, str, dict[str, Any]]]:
    """Replayable inputs from tagged work-order events, one per input id, in stored order."""
    seen: set[str] = set()
    out: list[tuple[float, str, dict[str, Any]]] = []
    for event in events:
        details = event.details or {}
        kind, input_id = details.get("input"), details.get("input_id")
        if kind not in ("crew", "assign", "tick") or not input_id or input_id in seen:
            continue
        seen.add(input_id)
        out.append((float(details.get("wall", 0.0)), kind, details))
    return out
