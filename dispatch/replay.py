"""Storm replay: the real outage centre on a simulated clock, with crews and a true grid.

A discrete-event simulation (one heap of timed events, no wall clock, deterministic for a
seed) drives :class:`~gridmend.dispatch.centre.OutageCentre` exactly as the live service
does: reports arrive in time order, the centre ticks every few simulated minutes, and
simulated crews answer its assignments through the same crew-app calls — accept, drive the
road route (GPS fixes along the route geometry), arrive, diagnose, repair, restore.

Beside the centre runs the *truth*: a second :class:`~gridmend.topology.network.Topology`
of the same grid where true failed devices are taken out of service at their failure time
and put back when a crew repairs them, so "who is out" is always known exactly. A repair at
the suspected device fixes the true fault nearest to it (at or below it, else above it if
inference picked too low) — one true fault per repair — so a nested fuse stays dark after
the feeder above it is repaired until its own crew comes. Restorations send AMI restore
messages (meters with AMI whose backhaul survived), customers answer the follow-up, and
customers still dark call again; the dispatcher reopens or splits on the answers.

Without a truth (a historical call log only), a crew finds each work order's suspected
device failed since the order's first report ("log mode": the outage as the utility saw it;
customers and meters send nothing beyond the log, so no follow-up answers either).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from gridmend.dispatch.centre import OutageCentre, Outcome
from gridmend.dispatch.crews import Crew, CrewStatus
from gridmend.dispatch.dispatcher import DispatchEvent, DispatchSettings
from gridmend.dispatch.escalation import Escalation
from gridmend.dispatch.followup import CustomerAnswer
from gridmend.dispatch.lifecycle import FINAL_STATES, WorkOrderState
from gridmend.dispatch.priority import PriorityWeights
from gridmend.dispatch.reports import HUMAN_CHANNELS, Channel, Report, Scope
from gridmend.dispatch.rules import InferenceSettings
from gridmend.geo.routing import ApproximateRouter, OutOfCoverageError, Router
from gridmend.topology.elements import Kind
from gridmend.topology.network import SwitchingRefused, Topology

S = WorkOrderState
LonLat = tuple[float, float]

#: Dispatch strategies a planner can compare.
STRATEGIES: tuple[str, ...] = ("nearest", "priority", "mainline-first")


def strategy_settings(name: str, base: DispatchSettings | None = None) -> DispatchSettings:
    """Dispatch settings for a named strategy (ValueError names the unknown one).

    - ``nearest``: no priority weighting — the crew that gets there first, job by job;
    - ``priority``: the default weights (critical customers, main line, customers, promise,
      waiting time);
    - ``mainline-first``: main-line rank dominates everything, critical customers next.
    """
    base = base or DispatchSettings()
    if name == "nearest":
        weights = PriorityWeights(
            critical=0.0, critical_each=0.0, main_line=0.0, customers=0.0, promise=0.0, waiting=0.0
        )
    elif name == "priority":
        weights = PriorityWeights()
    elif name == "mainline-first":
        weights = PriorityWeights(main_line=400_000.0, critical=100_000.0, customers=10.0)
    else:
        raise ValueError(f"unknown strategy {name!r} (expected one of {', '.join(STRATEGIES)})")
    return replace(base, priority=weights)


@dataclass(frozen=True)
class RepairTimes:
    """On-site repair time: lognormal per device kind, times the storm's severity."""

    median_h: Mapping[Kind, float] = field(
        default_factory=lambda: {
            Kind.TRANSFORMER: 3.0,
            Kind.FUSE: 1.0,
            Kind.RECLOSER: 4.0,
            Kind.BREAKER: 4.0,
            Kind.SECTIONALISER: 2.5,
            Kind.LOAD_BREAK_SWITCH: 2.0,
            Kind.DISCONNECTOR: 2.0,
            Kind.METER: 0.75,
        }
    )
    default_h: float = 2.0
    sigma: float = 0.5
    #: Patrol time when the crew finds nothing to repair (wrong device, noise).
    nothing_found_h: float = 0.5

    def draw(self, kind: Kind | None, severity: float, rng: np.random.Generator) -> float:
        """Seconds of repair for a fault on a device of ``kind`` (None: nothing found)."""
        if kind is None:
            return self.nothing_found_h * 3600.0
        median = self.median_h.get(kind, self.default_h) * severity
        return float(rng.lognormal(math.log(median * 3600.0), self.sigma))


@dataclass(frozen=True)
class CrewBehaviour:
    """How simulated crews use the app: delays, diagnosis, how often they send GPS."""

    accept_delay_s: tuple[float, float] = (60.0, 300.0)
    diagnose_s: tuple[float, float] = (600.0, 1800.0)
    gps_interval_s: float = 180.0


@dataclass(frozen=True)
class ReplaySettings:
    """Knobs of one replay (defaults: a moderate storm)."""

    tick_s: float = 300.0  # the centre's clock ticks every 5 simulated minutes
    batch_s: float = 60.0  # reports arriving within a minute are taken as one batch
    severity: float = 1.0  # multiplies repair times (flooded kit, fallen trees …)
    repair: RepairTimes = field(default_factory=RepairTimes)
    crew: CrewBehaviour = field(default_factory=CrewBehaviour)
    ami_share: float = 0.5  # meters with AMI (send a restore 30–45 s after supply returns)
    ami_backhaul_loss: float = 0.3  # transformer areas whose meter network is down
    restore_delay_s: tuple[float, float] = (30.0, 45.0)
    followup_share: float = 0.3  # asked customers who answer the follow-up …
    followup_delay_s: float = 1800.0  # … within this long of the restoration
    followup_max: int = 25  # answers drawn per order at most
    callback_every_s: float = 6 * 3600.0  # customers still dark call again …
    callback_rate: float = 0.01  # … this share of them each period, growing with the wait
    max_days: float = 21.0  # hard stop of the simulated clock
    search_radius_m: float = 500.0  # a crew finds a fault next door within this distance


@dataclass(frozen=True)
class TruthFault:
    """A device that really failed, when, and (for a self-clearing fault) when it came back."""

    truth_id: str
    device: int
    start: float
    end: float | None = None  # restored by itself (recloser, upstream switching) at
    cause: str = ""


@dataclass
class FaultRecord:
    """What happened to one true fault."""

    truth_id: str
    device: int
    kind: str
    start: float
    customers: int
    restored_at: float | None = None
    restored_by: str | None = None  # work order id, or "self"


@dataclass
class OrderRecord:
    """One work order as the KPIs need it."""

    work_order_id: str
    fault_id: str | None
    device: int
    kind: str
    state: str
    service_class: str
    customers: int
    critical: int
    first_report: float
    promise_deadline: float
    created: float
    assigned: float | None
    arrived: float | None
    restored: float | None
    crew_id: str | None
    reopens: str | None
    fixed_truth: str | None


@dataclass
class ReplayResult:
    """Everything a replay produced, for the KPIs, the report and the sweep."""

    strategy: str
    seed: int
    start: float
    end: float
    customers_served: int
    timeline_t: np.ndarray  # change times of customers out (sorted)
    timeline_out: np.ndarray  # customers out just after each time
    interruptions: int  # customer interruptions (a meter going dark once)
    durations_s: np.ndarray  # per restored customer interruption
    still_out: int  # customers dark when the replay stopped
    faults: list[FaultRecord]
    orders: list[OrderRecord]
    crew_tracks: dict[str, list[tuple[float, float, float]]]  # crew → (t, lon, lat)
    crew_busy_s: dict[str, float]
    crew_on_shift_s: dict[str, float]
    reports_in: int
    reports_dropped: int  # calls never made because power came back first
    notifications: int
    notified_reports: int
    escalations: dict[str, int]
    events: int  # simulation events processed
    inferred_devices: list[str]
    truth: dict | None = None  # the storm's truth file (for precision/recall)
    element_ids: list[str] = field(default_factory=list)
    outage_devices: list[int] = field(default_factory=list)

    def customers_out_at(self, t: float | np.ndarray) -> np.ndarray:
        """Customers out at time(s) ``t`` (step function of the timeline)."""
        k = np.searchsorted(self.timeline_t, np.asarray(t, dtype=float), side="right") - 1
        return np.where(k >= 0, self.timeline_out[np.maximum(k, 0)], 0)


@dataclass
class _SimCrew:
    """A crew as the simulation moves it (the dispatcher's Crew is what the centre knows)."""

    crew_id: str
    position: LonLat
    job: str | None = None
    phase: str = "idle"  # idle | accepting | travelling | on_site
    token: int = 0
    route: np.ndarray | None = None  # (k, 2) lon/lat
    cum: np.ndarray | None = None  # cumulative share of the route's length at each vertex
    depart: float = 0.0
    travel_s: float = 0.0
    busy_since: float | None = None
    busy_s: float = 0.0
    fixing: int | None = None  # truth fault index being repaired
    repair_end: float | None = None
    track: list[tuple[float, float, float]] = field(default_factory=list)

    def where(self, t: float) -> LonLat:
        """Position along the route at ``t`` (the crew itself when not travelling)."""
        if self.phase != "travelling" or self.route is None or self.cum is None:
            return self.position
        share = min(max((t - self.depart) / max(self.travel_s, 1e-9), 0.0), 1.0)
        lon = float(np.interp(share, self.cum, self.route[:, 0]))
        lat = float(np.interp(share, self.cum, self.route[:, 1]))
        return (lon, lat)


def _route_shape(
    coords: list[LonLat] | None, a: LonLat, b: LonLat
) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(coords if coords and len(coords) >= 2 else [a, b], dtype=float)
    scale = math.cos(math.radians(float(pts[:, 1].mean())))
    seg = np.hypot(np.diff(pts[:, 0]) * scale, np.diff(pts[:, 1]))
    total = float(seg.sum())
    cum = (
        np.concatenate([[0.0], np.cumsum(seg) / total])
        if total > 0
        else np.linspace(0, 1, len(pts))
    )
    return pts, cum


class StormReplay:
    """One replay of one storm under one dispatch strategy (see module docstring)."""

    def __init__(
        self,
        topology: Topology,
        router: Router,
        crews: Iterable[Crew],
        reports: list[Report],
        *,
        truth_faults: list[TruthFault] | None = None,
        report_meters: Mapping[str, int] | None = None,
        truth: dict | None = None,
        strategy: str = "priority",
        seed: int = 0,
        settings: ReplaySettings | None = None,
        dispatch: DispatchSettings | None = None,
        inference: InferenceSettings | None = None,
        progress: Callable[[float, int, int], None] | None = None,
    ) -> None:
        self.s = settings or ReplaySettings()
        self.strategy = strategy
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.topology = topology
        self.grid = topology.grid
        self.router = router
        self._fallback = ApproximateRouter()
        fresh = [
            replace(
                c,
                status=CrewStatus.AVAILABLE,
                position=None,
                fix_time=None,
                current_job=None,
                queue=[],
            )
            for c in crews
        ]
        dispatch_settings = strategy_settings(strategy, dispatch)
        self.centre = OutageCentre(
            topology, router, fresh, inference=inference, dispatch=dispatch_settings
        )
        self.sim = {c.crew_id: _SimCrew(c.crew_id, c.depot) for c in fresh}
        self.reports = sorted(reports, key=lambda r: (r.time, r.report_id))
        self.report_meters = dict(report_meters or {})
        self.truth = truth
        self.log_mode = truth_faults is None
        self.truth_faults: list[TruthFault] = list(truth_faults or [])
        self.progress = progress
        # The true grid: same wiring, its own switch states.
        self.true_grid = Topology(topology.grid)
        n = len(self.grid)
        self.dark_since = np.full(n, np.nan)
        self.last_lit = np.full(n, -np.inf)
        self._deltas: list[tuple[float, int]] = []
        self._out = 0  # customers out now
        self._durations: list[np.ndarray] = []
        self.interruptions = 0
        self._active: dict[int, int] = {}  # true device → truth fault index (started, not fixed)
        self._claimed: set[int] = set()
        self._chains: dict[int, frozenset[int]] = {}
        self.records: list[FaultRecord] = []
        self._fixed_by_order: dict[str, str] = {}
        # Meters with AMI and transformer areas whose meter network is down.
        draws = np.random.default_rng([seed, 1])
        self.has_ami = draws.random(n) < self.s.ami_share
        transformers = topology.transformers()
        down = transformers[draws.random(len(transformers)) < self.s.ami_backhaul_loss]
        for t in down.tolist():
            self.has_ami[topology.meters_below(int(t))] = False
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self.now = -math.inf
        self.events = 0
        self.reports_in = 0
        self.reports_dropped = 0
        self.notifications = 0
        self._notified: set[str] = set()
        self.escalations: Counter[str] = Counter()
        self._followups_done: set[str] = set()
        for k, f in enumerate(self.truth_faults):
            self._check_device(f)
            self._push(f.start, "fail", (k,))
            if f.end is not None:
                self._push(f.end, "self_restore", (k,))
        self._schedule_reports(self.reports)
        first = min(
            [r.time for r in self.reports[:1]] + [f.start for f in self.truth_faults] or [0.0]
        )
        self.start = first
        self._push(first + self.s.tick_s, "tick", ())
        self._push(first + self.s.callback_every_s, "callbacks", ())

    # ------------------------------------------------------------------ set-up
    def _check_device(self, f: TruthFault) -> None:
        kind = self.topology.kind(f.device)
        if kind in (Kind.SOURCE, Kind.METER, Kind.LINE, Kind.BUSBAR):
            raise ValueError(
                f"true fault {f.truth_id}: {self.grid.element_ids[f.device]} is a {kind.value}; "
                "only devices and transformers fail in a replay"
            )

    def _push(self, t: float, kind: str, payload: tuple) -> None:
        heapq.heappush(self._heap, (float(t), next(self._seq), kind, payload))

    def _schedule_reports(self, reports: list[Report]) -> None:
        """Reports in batches: those within ``batch_s`` of the first of a batch go together."""
        batch: list[Report] = []
        for r in sorted(reports, key=lambda r: (r.time, r.report_id)):
            if batch and r.time - batch[0].time > self.s.batch_s:
                self._push(batch[-1].time, "reports", (batch,))
                batch = []
            batch.append(r)
        if batch:
            self._push(batch[-1].time, "reports", (batch,))

    # ------------------------------------------------------------------ main loop
    def run(self) -> ReplayResult:
        """Run until every true fault is repaired and no work is left (or ``max_days``)."""
        stop = self.start + self.s.max_days * 86_400.0
        while self._heap:
            t, _, kind, payload = heapq.heappop(self._heap)
            if t > stop:
                break
            self.now = max(self.now, t)
            self.events += 1
            getattr(self, "_on_" + kind)(*payload)
            if kind == "tick":
                if self.progress is not None:
                    self.progress(self.now, self.events, int(self._out_now()))
                if self._finished():
                    break
        return self._result()

    def _out_now(self) -> int:
        return self._out

    def _finished(self) -> bool:
        if any(k not in ("tick", "callbacks") for _, _, k, _ in self._heap):
            return False
        if self._active:
            return False
        if any(o.is_open for o in self.centre.dispatcher.orders.values()):
            return False
        return all(s.phase == "idle" for s in self.sim.values())

    # ------------------------------------------------------------------ truth
    def _darken(self, device: int, t: float) -> None:
        """Take a device out in the true grid from ``t`` (a backdated ``t`` never reaches
        back before a meter's last restoration, so no customer-minute counts twice)."""
        result = self.true_grid.set_in_service(self.grid.element_ids[device], False)
        off = result.deenergised
        if len(off):
            starts = np.maximum(t, self.last_lit[off])
            self.dark_since[off] = starts
            self.interruptions += len(off)
            when, count = np.unique(starts, return_counts=True)
            self._deltas.extend(zip(when.tolist(), count.tolist(), strict=True))
            self._out += len(off)

    def _light(self, device: int, t: float) -> np.ndarray:
        result = self.true_grid.set_in_service(self.grid.element_ids[device], True)
        on = result.energised
        if len(on):
            self._durations.append(t - self.dark_since[on])
            self.dark_since[on] = np.nan
            self.last_lit[on] = t
            self._deltas.append((t, -len(on)))
            self._out -= len(on)
        return on

    def _dark(self, meters: np.ndarray) -> np.ndarray:
        """Which of these meters are without supply now (kept in step with the true grid)."""
        return ~np.isnan(self.dark_since[meters])

    def _on_fail(self, k: int) -> None:
        f = self.truth_faults[k]
        if f.device in self._active:
            return
        try:
            self._darken(f.device, f.start)
        except SwitchingRefused as err:
            raise ValueError(f"true fault {f.truth_id}: {err}") from err
        self._active[f.device] = k
        self.records.append(
            FaultRecord(
                f.truth_id,
                f.device,
                self.topology.kind(f.device).value,
                f.start,
                self.topology.customers_below(f.device),
            )
        )

    def _on_self_restore(self, k: int) -> None:
        f = self.truth_faults[k]
        if self._active.get(f.device) != k or k in self._claimed:
            return
        self._restore_truth(k, self.now, "self")

    def _restore_truth(self, k: int, t: float, by: str) -> np.ndarray:
        f = self.truth_faults[k]
        self._active.pop(f.device, None)
        self._claimed.discard(k)
        on = self._light(f.device, t)
        record = next(r for r in reversed(self.records) if r.truth_id == f.truth_id)
        record.restored_at, record.restored_by = t, by
        self._send_restores(on, t)
        if by != "self" and not self.log_mode:
            self._crew_confirms(on, t)
        return on

    def _send_restores(self, meters: np.ndarray, t: float) -> None:
        """AMI restore messages from meters whose AMI and backhaul work, 30–45 s later
        (in log mode the log already holds the meters' messages)."""
        if self.log_mode:
            return
        ami = meters[self.has_ami[meters]]
        if not len(ami):
            return
        lo, hi = self.s.restore_delay_s
        delays = self.rng.uniform(lo, hi, len(ami))
        ids = self.grid.element_ids
        batch = [
            Report(f"AR{next(self._ids):07d}", t + float(d), Channel.AMI_RESTORE, ids[m])
            for m, d in zip(ami.tolist(), delays.tolist(), strict=True)
        ]
        self._push(max(r.time for r in batch), "reports", (batch,))

    def _crew_confirms(self, meters: np.ndarray, t: float) -> None:
        """The crew confirms supply at each transformer area it re-energised (one crew report
        per area), so the engine learns the fault above is restored even without AMI."""
        seen: set[int] = set()
        batch = []
        ids = self.grid.element_ids
        for m in meters.tolist():
            area = self.topology.transformer_of(m)
            if area in seen:
                continue
            seen.add(area)
            batch.append(
                Report(f"CR{next(self._ids):07d}", t, Channel.CREW, ids[m], text="power restored")
            )
        if batch:
            self._push(t, "confirmations", (batch,))

    def _on_confirmations(self, batch: list[Report]) -> None:
        self._handle(self.centre.take_reports(batch))

    def _chain(self, node: int) -> frozenset[int]:
        chain = self._chains.get(node)
        if chain is None:
            t = self.topology
            chain = frozenset(t.meter_chain(node) if t.is_meter(node) else t.chain(node))
            self._chains[node] = chain
        return chain

    def _true_fault_for(self, suspected: int) -> int | None:
        """The true fault a crew at ``suspected`` finds: nearest at or below, else above, else
        the nearest one within ``search_radius_m`` (a neighbouring device)."""
        if suspected < 0:
            return None
        best, best_depth = None, math.inf
        for device, k in self._active.items():
            if k in self._claimed:
                continue
            chain = self._chain(device)
            if suspected in chain and len(chain) < best_depth:
                best, best_depth = k, len(chain)
        if best is not None:
            return best
        t = self.topology
        above = t.meter_chain(suspected) if t.is_meter(suspected) else t.chain(suspected)
        for node in above:
            k = self._active.get(int(node))
            if k is not None and k not in self._claimed:
                return k
        # A neighbouring device (inference picked a sibling): the crew sees the dark area
        # next door and fixes the nearest unclaimed fault within reach.
        free = [(d, k) for d, k in self._active.items() if k not in self._claimed]
        if not free:
            return None
        grid = self.grid
        devices = np.array([d for d, _ in free])
        lon, lat = grid.location(suspected)
        dx = (grid.lon[devices] - lon) * 111_320.0 * math.cos(math.radians(lat))
        dy = (grid.lat[devices] - lat) * 110_540.0
        dist = np.hypot(dx, dy)
        j = int(np.nanargmin(dist)) if np.isfinite(dist).any() else -1
        return free[j][1] if j >= 0 and dist[j] <= self.s.search_radius_m else None

    # ------------------------------------------------------------------ reports
    def _on_reports(self, batch: list[Report]) -> None:
        keep = []
        for r in batch:
            meter = self.report_meters.get(r.report_id)
            if (
                meter is not None
                and r.channel in HUMAN_CHANNELS
                and not r.says_power_back
                and self.true_grid.is_energised(meter)
            ):
                self.reports_dropped += 1  # power came back before they called
                continue
            keep.append(r)
        if not keep:
            return
        self.reports_in += len(keep)
        self._handle(self.centre.take_reports(keep))

    def _on_callbacks(self) -> None:
        """Customers still without power call again (the engine merges or re-opens).

        Not in log mode: the call log already holds every call customers made."""
        if self.log_mode:
            return
        self._push(self.now + self.s.callback_every_s, "callbacks", ())
        meters = self.topology.meters
        dark = meters[self._dark(meters)]
        if not len(dark):
            return
        # The longer they wait, the likelier they call again (capped at 30 % per period).
        hours = (self.now - self.dark_since[dark]) / 3600.0
        chance = np.minimum(self.s.callback_rate * (1.0 + hours / 6.0), 0.3)
        calling = dark[self.rng.random(len(dark)) < chance]
        ids = self.grid.element_ids
        times = self.now + self.rng.uniform(0, self.s.callback_every_s / 2, len(calling))
        batch = [
            Report(
                f"CB{next(self._ids):07d}",
                float(when),
                Channel.PHONE,
                ids[m],
                scope=Scope.NEIGHBOURHOOD,
                text="still no power",
            )
            for m, when in zip(calling.tolist(), times.tolist(), strict=True)
        ]
        for r, m in zip(batch, calling.tolist(), strict=True):
            self.report_meters[r.report_id] = m
        self._schedule_reports(batch)

    # ------------------------------------------------------------------ clock
    def _on_tick(self) -> None:
        self._handle(self.centre.tick(self.now))
        for crew_id in self.sim:
            self._sync_crew(crew_id)
        self._push(self.now + self.s.tick_s, "tick", ())

    # ------------------------------------------------------------------ centre output
    def _handle(self, outcome: Outcome) -> None:
        self.notifications += len(outcome.notifications)
        for n in outcome.notifications:
            if n.report_id is not None:
                self._notified.add(n.report_id)
        touched: list[str] = []
        for event in outcome.events:
            if isinstance(event, Escalation):
                self.escalations[event.type.value] += 1
                continue
            if not isinstance(event, DispatchEvent):
                continue
            if event.crew_id is not None:
                touched.append(event.crew_id)
        for crew_id in dict.fromkeys(touched):
            self._sync_crew(crew_id)

    def _log_mode_fault(self, oid: str) -> int | None:
        """Without a truth, the crew finds the suspected device failed, since the order's
        first report (the outage as the utility saw it)."""
        view = self.centre.dispatcher.faults.get(oid)
        order = self.centre.dispatcher.orders[oid]
        if view is None or order.reopens or view.device < 0 or view.device in self._active:
            return None
        if self.topology.kind(view.device) in (Kind.SOURCE, Kind.METER, Kind.LINE, Kind.BUSBAR):
            return None
        if not self.true_grid.is_energised(view.device):
            return None  # already dark under another fault
        k = len(self.truth_faults)
        self.truth_faults.append(
            TruthFault(f"L{k + 1:04d}", view.device, view.first_report_time, None, "reported")
        )
        self._on_fail(k)
        return k

    # ------------------------------------------------------------------ crews
    def _sync_crew(self, crew_id: str) -> None:
        """Bring the simulated crew in line with what the dispatcher wants it to do."""
        sim = self.sim[crew_id]
        crew = self.centre.dispatcher.crews[crew_id]
        orders = self.centre.dispatcher.orders
        if sim.job is not None:
            if sim.phase == "on_site":
                return  # a crew finishes the repair it started
            order = orders[sim.job]
            if crew.current_job == sim.job and order.state in (S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE):
                return
            self._abandon(sim)
        target = crew.current_job
        if target is None:
            return
        order = orders[target]
        if order.crew_id != crew_id or order.state not in (S.ASSIGNED, S.ACCEPTED, S.EN_ROUTE):
            return
        sim.job = target
        sim.token += 1
        if sim.busy_since is None:
            sim.busy_since = self.now
        if order.state == S.ASSIGNED:
            sim.phase = "accepting"
            lo, hi = self.s.crew.accept_delay_s
            self._push(
                self.now + float(self.rng.uniform(lo, hi)), "crew", (crew_id, sim.token, "accept")
            )
        else:
            sim.phase = "accepting"
            self._push(self.now, "crew", (crew_id, sim.token, "depart"))

    def _abandon(self, sim: _SimCrew) -> None:
        """The job was taken away (re-planned, pre-empted, merged): stop where we are."""
        sim.position = sim.where(self.now)
        sim.job, sim.phase, sim.route, sim.cum = None, "idle", None, None
        sim.token += 1
        self._idle(sim)
        crew = self.centre.dispatcher.crews[sim.crew_id]
        if crew.fix_time is None or crew.fix_time <= self.now:
            self._handle(self.centre.gps(sim.crew_id, *sim.position, self.now))

    def _idle(self, sim: _SimCrew) -> None:
        if sim.busy_since is not None:
            sim.busy_s += self.now - sim.busy_since
            sim.busy_since = None

    def _crew_event(self, sim: _SimCrew, state: str, **kw) -> Outcome:
        return self.centre.crew_event(sim.crew_id, sim.job, state, self.now, **kw)  # type: ignore[arg-type]

    def _on_crew(self, crew_id: str, token: int, step: str) -> None:
        sim = self.sim[crew_id]
        if token != sim.token or sim.job is None:
            return
        getattr(self, "_crew_" + step)(sim)

    def _still_mine(self, sim: _SimCrew, states: tuple[WorkOrderState, ...]) -> bool:
        order = self.centre.dispatcher.orders[sim.job]  # type: ignore[index]
        crew = self.centre.dispatcher.crews[sim.crew_id]
        return (
            order.crew_id == sim.crew_id and crew.current_job == sim.job and order.state in states
        )

    def _crew_accept(self, sim: _SimCrew) -> None:
        if not self._still_mine(sim, (S.ASSIGNED,)):
            self._abandon(sim)
            self._sync_crew(sim.crew_id)
            return
        self._handle(self._crew_event(sim, "accepted"))
        if sim.job is not None and sim.phase == "accepting":
            self._push(self.now + 60.0, "crew", (sim.crew_id, sim.token, "depart"))

    def _crew_depart(self, sim: _SimCrew) -> None:
        if not self._still_mine(sim, (S.ACCEPTED, S.EN_ROUTE)):
            self._abandon(sim)
            self._sync_crew(sim.crew_id)
            return
        order = self.centre.dispatcher.orders[sim.job]  # type: ignore[index]
        try:
            route = self.router.eta(sim.position, order.location, geometry=True)
        except OutOfCoverageError:  # off the road data: straight line × detour
            route = self._fallback.eta(sim.position, order.location, geometry=True)
        if not math.isfinite(route.seconds):
            route = self._fallback.eta(sim.position, order.location, geometry=True)
        sim.route, sim.cum = _route_shape(route.coordinates, sim.position, order.location)
        sim.depart, sim.travel_s, sim.phase = self.now, float(route.seconds), "travelling"
        sim.track.append((self.now, *sim.position))
        if order.state != S.EN_ROUTE:
            self._handle(self._crew_event(sim, "en_route", position=sim.position))
        if sim.phase != "travelling":
            return
        arrive = self.now + sim.travel_s
        step = self.s.crew.gps_interval_s
        if self.now + step < arrive:
            self._push(self.now + step, "crew", (sim.crew_id, sim.token, "gps"))
        self._push(arrive, "crew", (sim.crew_id, sim.token, "arrive"))

    def _crew_gps(self, sim: _SimCrew) -> None:
        lon, lat = sim.where(self.now)
        sim.track.append((self.now, lon, lat))
        self._handle(self.centre.gps(sim.crew_id, lon, lat, self.now))
        if (
            sim.phase == "travelling"
            and self.now + self.s.crew.gps_interval_s < sim.depart + sim.travel_s
        ):
            self._push(
                self.now + self.s.crew.gps_interval_s, "crew", (sim.crew_id, sim.token, "gps")
            )

    def _crew_arrive(self, sim: _SimCrew) -> None:
        if not self._still_mine(sim, (S.EN_ROUTE,)):
            self._abandon(sim)
            self._sync_crew(sim.crew_id)
            return
        order = self.centre.dispatcher.orders[sim.job]  # type: ignore[index]
        sim.position, sim.phase, sim.route, sim.cum = order.location, "on_site", None, None
        sim.track.append((self.now, *sim.position))
        self._handle(self._crew_event(sim, "arrived", position=sim.position))
        self._handle(self._crew_event(sim, "diagnosing"))
        k = self._true_fault_for(order.device)
        if k is None and self.log_mode:
            k = self._log_mode_fault(order.work_order_id)
        sim.fixing = k
        kind = None
        if k is not None:
            self._claimed.add(k)
            kind = self.topology.kind(self.truth_faults[k].device)
        lo, hi = self.s.crew.diagnose_s
        diagnose = float(self.rng.uniform(lo, hi))
        repair = self.s.repair.draw(kind, self.s.severity, self.rng)
        self._push(self.now + diagnose, "crew", (sim.crew_id, sim.token, "repairing"))
        sim.repair_end = self.now + diagnose + repair
        self._push(sim.repair_end, "crew", (sim.crew_id, sim.token, "restored"))

    def _cause(self, sim: _SimCrew) -> str:
        if sim.fixing is None:
            return "no fault found"
        f = self.truth_faults[sim.fixing]
        return f.cause or f"{self.topology.kind(f.device).value} failed"

    def _crew_repairing(self, sim: _SimCrew) -> None:
        order = self.centre.dispatcher.orders[sim.job]  # type: ignore[index]
        if order.state in FINAL_STATES:
            return
        self._handle(
            self._crew_event(
                sim, "repairing", cause=self._cause(sim), expected_completion=sim.repair_end
            )
        )

    def _crew_restored(self, sim: _SimCrew) -> None:
        oid = sim.job
        assert oid is not None
        order = self.centre.dispatcher.orders[oid]
        if sim.fixing is not None:
            self._fixed_by_order[oid] = self.truth_faults[sim.fixing].truth_id
            self._restore_truth(sim.fixing, self.now, oid)
        cause = self._cause(sim)
        sim.fixing = None
        sim.job, sim.phase = None, "idle"
        sim.token += 1
        self._idle(sim)
        if order.state not in FINAL_STATES and order.crew_id == sim.crew_id:
            self._handle(
                self.centre.crew_event(sim.crew_id, oid, "restored", self.now, cause=cause)
            )
            follow = self.centre.dispatcher.followups.get(oid)
            if follow is not None and len(follow.meters) and not self.log_mode:
                self._push(self.now + self.s.followup_delay_s, "followup", (oid,))
                self._callbacks_after_repair(follow.meters)
        self._sync_crew(sim.crew_id)

    def _callbacks_after_repair(self, meters: np.ndarray) -> None:
        """Customers the crew left dark (a nested fault below) call soon after."""
        if self.log_mode:
            return
        dark = meters[self._dark(meters)]
        if not len(dark):
            return
        calling = dark[self.rng.random(len(dark)) < 0.1]
        ids = self.grid.element_ids
        batch = []
        for m in calling.tolist():
            r = Report(
                f"CB{next(self._ids):07d}",
                self.now + float(self.rng.uniform(300, 2400)),
                Channel.PHONE,
                ids[m],
                scope=Scope.NEIGHBOURHOOD,
                text="still no power",
            )
            self.report_meters[r.report_id] = m
            batch.append(r)
        self._schedule_reports(batch)

    # ------------------------------------------------------------------ follow-up
    def _on_followup(self, oid: str) -> None:
        dispatcher = self.centre.dispatcher
        follow = dispatcher.followups.get(oid)
        order = dispatcher.orders[oid]
        if follow is None or order.state != S.RESTORED or oid in self._followups_done:
            return
        self._followups_done.add(oid)
        meters = follow.meters
        answering = meters[self.rng.random(len(meters)) < self.s.followup_share]
        if len(answering) > self.s.followup_max:
            answering = self.rng.choice(answering, self.s.followup_max, replace=False)
        if not len(answering):
            return
        answering = np.sort(answering)
        lit = ~self._dark(answering)
        answers = [
            CustomerAnswer(int(m), bool(on), self.now, int(self.rng.integers(3, 6)))
            for m, on in zip(answering.tolist(), lit.tolist(), strict=True)
        ]
        _, outcome = self.centre.follow_up(oid, answers, self.now)
        self._handle(outcome)

    # ------------------------------------------------------------------ result
    def _result(self) -> ReplayResult:
        end = self.now
        for sim in self.sim.values():
            self._idle(sim)
        deltas = sorted(self._deltas)
        if deltas:
            times = np.array([t for t, _ in deltas])
            out = np.cumsum([d for _, d in deltas])
            last = np.r_[times[1:] != times[:-1], True]  # one value per time
            times, out = times[last], out[last]
        else:
            times, out = np.array([self.start]), np.array([0])
        durations = np.concatenate(self._durations) if self._durations else np.empty(0)
        dispatcher = self.centre.dispatcher
        orders = []
        for oid, o in dispatcher.orders.items():
            view = dispatcher.faults[oid]
            orders.append(
                OrderRecord(
                    oid,
                    o.fault_id,
                    o.device,
                    o.kind,
                    o.state.value,
                    view.service_class.value,
                    view.customers,
                    view.critical,
                    view.first_report_time,
                    view.promise_deadline,
                    o.created_at,
                    o.first_time_of(S.ASSIGNED),
                    o.first_time_of(S.ARRIVED),
                    o.first_time_of(S.RESTORED),
                    o.crew_id or next((e.actor for e in o.events if e.to_state == S.ARRIVED), None),
                    o.reopens,
                    self._fixed_by_order.get(oid),
                )
            )
        ids = self.grid.element_ids
        inferred = [
            ids[o.device]
            for o in orders
            if o.kind == "fault" and o.state not in ("merged", "cancelled") and o.device >= 0
        ]
        on_shift = {}
        grid_t = np.arange(self.start, max(end, self.start + 1), 300.0)
        for crew in dispatcher.crews.values():
            on_shift[crew.crew_id] = 300.0 * sum(crew.on_shift(float(t)) for t in grid_t)
        still_out = int(out[-1]) if len(out) else 0
        return ReplayResult(
            strategy=self.strategy,
            seed=self.seed,
            start=self.start,
            end=end,
            customers_served=len(self.topology.meters),
            timeline_t=times,
            timeline_out=out.astype(np.int64),
            interruptions=self.interruptions,
            durations_s=durations,
            still_out=still_out,
            faults=self.records,
            orders=orders,
            crew_tracks={c: s.track for c, s in self.sim.items()},
            crew_busy_s={c: s.busy_s for c, s in self.sim.items()},
            crew_on_shift_s=on_shift,
            reports_in=self.reports_in,
            reports_dropped=self.reports_dropped,
            notifications=self.notifications,
            notified_reports=len(self._notified),
            escalations=dict(self.escalations),
            events=self.events,
            inferred_devices=inferred,
            truth=self.truth,
            element_ids=ids,
            outage_devices=[f.device for f in self.truth_faults],
        )


def replay_storm(
    topology: Topology,
    router: Router,
    crews: Iterable[Crew],
    reports: list[Report],
    **kwargs,
) -> ReplayResult:
    """Run one replay (see :class:`StormReplay` for the keyword arguments)."""
    return StormReplay(topology, router, crews, reports, **kwargs).run()
