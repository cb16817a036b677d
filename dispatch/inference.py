"""Trouble-call analysis: reports in, one fault per operated device out, an answer at once.

:class:`OutageEngine` is pure and in memory. Each report costs O(length of its meter's
device chain) dict work:

- every *candidate* (transformer or protective device) keeps counters: households out
  directly below it (all / not "only me" / AMI last gasp) and reports per subtree;
- a candidate is *predicted out* by its own meters (one caller: provisional; two or a last
  gasp: confirmed), by a SCADA trip, or by *roll-up*: enough of its parts report and every
  quiet part is plausible at the pooled report rate (Poisson), with AMI silence weighed by
  how often an area's backhaul fails (see :class:`~gridmend.dispatch.rules.RollUpRule`);
  below an MV device the quiet transformer areas inside reporting parts count too, and the
  parts must have sent their last gasps together (a flood takes transformers out one by one);
- a *fault* is a predicted candidate with no predicted ancestor (a root). A new root absorbs
  the faults and stray reports below it; the oldest absorbed fault keeps its id;
- restore evidence (AMI restore, "power is back") proves a meter's whole chain live: the
  fault above it is restored, presumed-restored calls are cleared, and meters that sent a
  last gasp but no restore within a grace period come back as a nested outage; so do the
  presumed-restored callers of a part nothing proved live once anyone there reports again
  ("the street got power back, we did not");
- a fault resting on one household (or two, where far more reports were due) whose
  transformer area (for a pole-top transformer serving a home or two: its lateral) stays
  quiet for a window is re-judged customer-side, as is a lone
  caller whose neighbour's meter shows supply; an "only me" caller is promoted into a fault
  when a neighbour reports within the window.

Answers that change later (promotion, demotion) are appended to :attr:`OutageEngine.updates`
so the shell can notify the caller.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np
import shapely

from gridmend.dispatch.answers import Answer, AnswerKind, customer_side, rejected
from gridmend.dispatch.planned_outages import PlannedOutage, PlannedOutageBook
from gridmend.dispatch.reports import Channel, Report, Scope, format_time
from gridmend.dispatch.resolution import Resolution, Resolver
from gridmend.dispatch.rules import InferenceSettings, RollUpRule
from gridmend.topology.elements import PROTECTIVE_KINDS, Kind
from gridmend.topology.grid import KIND_INDEX
from gridmend.topology.network import Topology

_CANDIDATE_KINDS = PROTECTIVE_KINDS | {Kind.TRANSFORMER}


class FaultStatus:
    OPEN = "open"
    RESTORED = "restored"
    MERGED = "merged"  # absorbed into another fault (see merged_into)
    CUSTOMER_SIDE = "customer_side"  # withdrawn: the lone caller's own installation
    WITHDRAWN = "withdrawn"  # evidence fell below every rule

    ACTIVE = frozenset({OPEN, RESTORED})


@dataclass(eq=False)
class Fault:
    """A suspected failed device and everything known about its outage."""

    fault_id: str
    device: int  # element index of the suspected device
    first_report_time: float
    status: str = FaultStatus.OPEN
    meters: set[int] = field(default_factory=set)  # reporting meters (≥ 0) and area keys (< 0)
    report_ids: list[str] = field(default_factory=list)
    confidence: float = 0.0
    eta: float | None = None  # filled by dispatch
    merged_into: str | None = None
    restored_time: float | None = None
    serial: int = 0  # creation order: faults created while one report was taken are "new"

    @property
    def is_work_order(self) -> bool:
        """Faults a crew has to visit (open or already restored), not merged or withdrawn."""
        return self.status in FaultStatus.ACTIVE


@dataclass(slots=True)
class _Out:
    """A meter (or an ambiguous transformer-area fix) currently reported without supply."""

    leaf: int
    strong: bool  # not only "only me"
    gasped: bool
    first_time: float
    scope: Scope | None
    report_ids: list[str]
    judged_customer_side: bool = False  # a repeat call by the same household cannot undo it
    gasp_time: float = 0.0  # when its last gasp came (if ``gasped``)


class OutageEngine:
    """Incremental trouble-call analysis over one topology (see module docstring)."""

    def __init__(
        self,
        topology: Topology,
        settings: InferenceSettings | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.topology = topology
        self.settings = settings or InferenceSettings()
        self.resolver = resolver or Resolver(topology, self.settings.gps_radius_m)
        self.planned = PlannedOutageBook(topology)
        grid = topology.grid
        self._ids = grid.element_ids
        self._build_candidates()
        # Dynamic state.
        self.answers: dict[str, Answer] = {}
        self.updates: list[Answer] = []
        self.faults: dict[str, Fault] = {}
        self._out: dict[int, _Out] = {}
        self._n_out: dict[int, int] = {}
        self._n_strong: dict[int, int] = {}
        self._n_gasp: dict[int, int] = {}
        self._child_out: dict[int, int] = {}
        self._scada: set[int] = set()
        self._pred: set[int] = set()
        self._confirmed: set[int] = set()
        self._n_area: dict[int, int] = {}
        self._parts_out: dict[int, int] = {}
        self._rolled: set[int] = set()
        self._roll_cache: dict[int, tuple[int, int, int, bool]] = {}
        self._sub_gasp: dict[int, int] = {}
        self._sub_gasp_time: dict[int, float] = {}  # sum of gasp times (minus epoch) per subtree
        self._epoch: float | None = None
        self._sub_out: dict[int, int] = {}
        self._root_fault: dict[int, Fault] = {}
        self._roots_below: dict[int, set[int]] = {}
        self._stray_below: dict[int, set[int]] = {}
        self._dormant: dict[int, Fault] = {}
        self._restored_at: dict[int, float] = {}
        # Candidate → last time restore evidence proved it live.
        self._live_since: dict[int, float] = {}
        # Restored root → (restoration time, callers presumed restored without proof).
        self._presumed: dict[int, tuple[float, list[tuple[int, _Out]]]] = {}
        self._customer_side: dict[int, list[str]] = {}  # households judged customer-side
        self._timers: list[tuple[float, int, str, object]] = []
        self._seq = 0
        self._next_fault = 1
        self.clock = -math.inf

    # ------------------------------------------------------------------ static
    def _build_candidates(self) -> None:
        """Nearest candidate above every hierarchy node; candidate parents, sizes, rules."""
        t = self.topology
        kind = t.grid.kind
        codes = np.array(sorted(KIND_INDEX[k] for k in _CANDIDATE_KINDS), dtype=np.int8)
        is_cand = np.isin(kind, codes)
        parent = t.node_parents
        up = np.full(len(kind), -1, dtype=np.int64)
        order = t.node_order.tolist()
        parent_list = parent[t.node_order].tolist()
        cand_list = is_cand[t.node_order].tolist()
        up_py: dict[int, int] = {}
        for node, p, c in zip(order, parent_list, cand_list, strict=True):
            up_py[node] = node if c else (up_py.get(p, -1) if p >= 0 else -1)
        for node, value in up_py.items():
            up[node] = value
        meters = t.meters
        self._leaf_of = np.full(len(kind), -1, dtype=np.int64)
        self._leaf_of[meters] = up[t.meter_node[meters]]
        candidates = np.flatnonzero(is_cand)
        cand_parent_node = parent[candidates]
        cand_parent = np.where(cand_parent_node >= 0, up[np.maximum(cand_parent_node, 0)], -1)
        self._parent: dict[int, int] = dict(
            zip(candidates.tolist(), cand_parent.tolist(), strict=True)
        )
        leaves = self._leaf_of[meters]
        direct = np.bincount(leaves[leaves >= 0], minlength=len(kind))
        kids = np.bincount(cand_parent[cand_parent >= 0], minlength=len(kind))
        self._direct: dict[int, int] = dict(
            zip(candidates.tolist(), direct[candidates].tolist(), strict=True)
        )
        self._children: dict[int, int] = dict(
            zip(candidates.tolist(), kids[candidates].tolist(), strict=True)
        )
        in_area = t.node_transformers[candidates] >= 0
        self._in_area = set(candidates[in_area].tolist())
        # Transformer areas (AMI concentrators) below every candidate.
        is_transformer = (kind == KIND_INDEX[Kind.TRANSFORMER]).astype(np.int64)
        self._areas: dict[int, int] = {}
        for node in reversed(order):
            if node in self._parent:
                p = self._parent[node]
                own = self._areas.get(node, 0) + int(is_transformer[node])
                self._areas[node] = own
                if p >= 0:
                    self._areas[p] = self._areas.get(p, 0) + own
        self._kids: dict[int, list[int]] = {}
        for c, p in self._parent.items():
            if p >= 0:
                self._kids.setdefault(p, []).append(c)
        self._is_transformer = set(np.flatnonzero(is_transformer).tolist())
        self._area_lists: dict[int, tuple[int, ...]] = {}
        self._customers: dict[int, int] = dict(
            zip(candidates.tolist(), t.customers_below_all[candidates].tolist(), strict=True)
        )
        rules = {KIND_INDEX[k]: self.settings.rule(k) for k in _CANDIDATE_KINDS}
        lv_fuse = self.settings.lv_fuse_rule
        fuse_code = KIND_INDEX[Kind.FUSE]
        self._area_of: dict[int, int] = dict(
            zip(candidates.tolist(), t.node_transformers[candidates].tolist(), strict=True)
        )
        self._rule = {
            c: lv_fuse if k == fuse_code and c in self._in_area else rules[k]
            for c, k in zip(candidates.tolist(), kind[candidates].tolist(), strict=True)
        }
        self._chains: dict[int, tuple[int, ...]] = {}
        # Parts a candidate has (downstream candidates with customers, plus its directly
        # attached meters): a device with fewer parts than its rule's ``min_parts`` rolls up
        # once all of them report.
        self._n_parts: dict[int, int] = {
            c: (1 if self._direct[c] else 0)
            + sum(1 for k in self._kids.get(c, ()) if self._customers[k])
            for c in self._parent
        }

    def chain(self, candidate: int) -> tuple[int, ...]:
        """Candidates from ``candidate`` up, nearest first (cached)."""
        cached = self._chains.get(candidate)
        if cached is None:
            p = self._parent[candidate]
            cached = (candidate,) if p < 0 else (candidate, *self.chain(p))
            self._chains[candidate] = cached
        return cached

    # ------------------------------------------------------------------ public API
    def announce_planned(self, outage: PlannedOutage) -> int:
        """Announce a planned outage; returns customers covered."""
        return self.planned.announce(outage)

    def ingest(self, report: Report, resolution: Resolution | None = None) -> Answer:
        """Take one report and answer it at once. The same report id twice is one report."""
        known = self.answers.get(report.report_id)
        if known is not None:
            return known
        if report.time > self.clock:
            self.advance(report.time)
        if resolution is None:
            resolution = self.resolver.resolve(report)
        answer = self._answer(report, resolution)
        self.answers[report.report_id] = answer
        return answer

    def ingest_many(self, reports: list[Report]) -> list[Answer]:
        """Resolve a batch vectorised, then ingest in time order; answers in input order."""
        resolutions = self.resolver.resolve_many(reports)
        order = sorted(range(len(reports)), key=lambda k: reports[k].time)
        answers: list[Answer | None] = [None] * len(reports)
        for k in order:
            answers[k] = self.ingest(reports[k], resolutions[k])
        return answers  # type: ignore[return-value]

    def advance(self, now: float) -> None:
        """Move the clock; runs re-judgements that fall due (lone callers, nested outages)."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, what, payload = heapq.heappop(timers)
            self.clock = max(self.clock, when)
            if what == "lone":
                self._judge_lone_caller(*payload)  # type: ignore[misc]
            elif what == "only_me":
                self._expire_only_me(*payload)  # type: ignore[misc]
            elif what == "redark":
                self._redark(*payload)  # type: ignore[misc]
        self.clock = max(self.clock, now)

    def flush(self) -> None:
        """End of a replay: run every pending re-judgement as if no more reports came."""
        self.advance(math.inf)

    def active_faults(self) -> list[Fault]:
        """Work orders: open or restored faults, oldest first."""
        faults = [f for f in self.faults.values() if f.is_work_order]
        for f in faults:
            f.confidence = self.confidence(f)
        return sorted(faults, key=lambda f: f.first_report_time)

    def fault_of_meter(self, meter_id: str) -> Fault | None:
        """The open fault a meter is currently counted in, if any."""
        m = self.topology.grid.index.get(meter_id)
        if m is None or m not in self._out:
            return None
        top = self._top_predicted(self._out[m].leaf)
        return None if top < 0 else self._root_fault.get(top)

    # ------------------------------------------------------------------ fault facts
    def confidence(self, fault: Fault) -> float:
        """Evidence strength: SCADA ≈ certain; else grows with independent evidence units."""
        c = fault.device
        if c in self._scada:
            return 0.99
        units = self._child_out.get(c, 0) + self._eff_meters(c)
        gasps = sum(1 for m in fault.meters if m in self._out and self._out[m].gasped)
        evidence = units + 2 * min(gasps, 3) + (1 if len(fault.meters) > 1 else 0)
        return round(min(0.98, 1.0 - 0.5 ** max(evidence, 1)), 3)

    def affected_meters(self, fault: Fault) -> np.ndarray:
        """Every meter below the suspected device (element indices)."""
        return self.topology.meters_below(fault.device)

    def customer_count(self, fault: Fault) -> int:
        return self.topology.customers_below(fault.device)

    def critical_customers(self, fault: Fault) -> list[str]:
        return [self._ids[m] for m in self.topology.critical_below(fault.device).tolist()]

    def outage_area(self, fault: Fault, ratio: float = 0.3) -> shapely.Geometry:
        """Concave hull (lon/lat) of the affected meters: the map's outage polygon."""
        meters = self.affected_meters(fault)
        grid = self.topology.grid
        points = shapely.multipoints(np.column_stack([grid.lon[meters], grid.lat[meters]]))
        return shapely.concave_hull(points, ratio=ratio)

    def fault_summary(self, fault: Fault) -> dict[str, object]:
        """JSON-ready description of one fault (ids as the grid importer names them)."""
        affected = self.affected_meters(fault)
        return {
            "fault_id": fault.fault_id,
            "device_id": self._ids[fault.device],
            "device_kind": self.topology.kind(fault.device).value,
            "status": fault.status,
            "confidence": self.confidence(fault),
            "first_report_time": format_time(fault.first_report_time),
            "restored_time": None
            if fault.restored_time is None
            else format_time(fault.restored_time),
            "customers": len(affected),
            "critical_customers": self.critical_customers(fault),
            "meters": [self._ids[m] for m in affected.tolist()],
            "reporting_meters": sorted(self._ids[m] for m in fault.meters if m >= 0),
            "report_ids": list(fault.report_ids),
            "eta": None if fault.eta is None else format_time(fault.eta),
        }

    # ------------------------------------------------------------------ answering
    def _answer(self, report: Report, res: Resolution) -> Answer:
        rid = report.report_id
        if res.rejected:
            return rejected(rid, res.reason or "unresolved")
        if report.says_flicker:
            # A flicker is a momentary interruption: the caller has supply, no crew is due.
            return rejected(rid, "momentary interruption (flicker): supply is on")
        if res.device >= 0:
            return self._device_report(report, res.device)
        if res.meter >= 0 and res.via == "id":
            key, leaf = res.meter, int(self._leaf_of[res.meter])
            if leaf < 0:
                return rejected(rid, f"meter {self._ids[key]} has no transformer or device above")
        else:
            # A GPS fix places the caller on an LV cable, not in a household: all fixes
            # there count as one witness (a repeat call from the same flat would otherwise
            # look like a neighbour's).
            near = res.meter if res.meter >= 0 else res.nearest
            leaf = int(self._leaf_of[near]) if near >= 0 else -1
            if leaf < 0:
                leaf = self._up_candidate(res.area)
            if report.has_fix and self._pred:
                leaf = self._leaf_within_fix(report, leaf)
            key = -(leaf + 2)
        chain = self.chain(leaf)
        if self.planned.outages:
            planned = self.planned.covering(key, chain, report.time)
            if planned is not None:
                return Answer(
                    AnswerKind.PLANNED_OUTAGE,
                    rid,
                    window=(planned.start, planned.end),
                    planned_id=planned.planned_id,
                    reason=planned.reason or None,
                    meter_id=self._ids[key] if key >= 0 else None,
                )
        if report.says_power_back:
            return self._power_back(report, key, chain)
        return self._power_out(report, key, leaf, chain)

    def _leaf_within_fix(self, report: Report, leaf: int) -> int:
        """Prefer a dark LV cable within the fix's uncertainty over the nearest meter's one.

        Phone GPS is good to 10–20 m; in a dense street the nearest service point may hang
        on the neighbouring transformer. If a meter within that radius is already inside an
        outage, the caller almost certainly is too.
        """
        if self._top_predicted(leaf) >= 0:
            return leaf
        index = self.resolver.index
        radius = self.settings.gps_uncertainty_m
        for position in index.within(report.lon, report.lat, radius, crs=report.crs).tolist():
            other = int(self._leaf_of[int(index.ids[position])])
            if other >= 0 and self._top_predicted(other) >= 0:
                return other
        return leaf

    def _up_candidate(self, node: int) -> int:
        for c in self.topology.chain(node):
            if c in self._parent:
                return c
        return -1

    def _answer_for(self, report: Report, key: int, before: int) -> Answer:
        rid = report.report_id
        meter_id = self._ids[key] if key >= 0 else None
        state = self._out[key]
        area_id = None
        if key < 0:  # a GPS fix: name the transformer area it fell in
            area = self._area_of.get(state.leaf, -1)
            area_id = self._ids[area if area >= 0 else state.leaf]
        top = self._top_predicted(state.leaf)
        if top < 0:
            answer = customer_side(rid, meter_id)
            return answer if area_id is None else replace(answer, area_id=area_id)
        fault = self._root_fault[top]
        kind = AnswerKind.MERGED if fault.serial < before else AnswerKind.NEW_FAULT
        return Answer(
            kind, rid, fault.fault_id, fault.status, fault.eta, meter_id=meter_id, area_id=area_id
        )

    def _power_out(self, report: Report, key: int, leaf: int, chain: tuple[int, ...]) -> Answer:
        before = self._next_fault
        channel = report.channel
        gasp = channel == Channel.AMI_LAST_GASP
        strong = gasp or report.scope != Scope.ONLY_ME
        if self._presumed and not gasp:
            self._still_dark(report.time, leaf, chain)
        state = self._out.get(key)
        if (
            state is None
            and key in self._customer_side
            and not gasp
            and self._top_predicted(leaf) < 0
        ):
            self._customer_side[key].append(report.report_id)
            return customer_side(report.report_id, self._meter_id(key))
        if state is not None:
            state.report_ids.append(report.report_id)
            top = self._top_predicted(leaf)
            if top >= 0:
                self._root_fault[top].report_ids.append(report.report_id)
            if strong and state.judged_customer_side and not gasp:
                strong = False  # the same household calling again is a consult
            if (strong and not state.strong) or (gasp and not state.gasped):
                self._count(key, state, -1)
                state.strong = state.strong or strong
                if gasp and not state.gasped:
                    state.gasp_time = report.time
                state.gasped = state.gasped or gasp
                self._count(key, state, +1)
                self._reevaluate(leaf, adding=True)
        else:
            state = _Out(leaf, strong, gasp, report.time, report.scope, [report.report_id])
            state.gasp_time = report.time if gasp else 0.0
            self._add_out(key, state)
        answer = self._answer_for(report, key, before)
        if answer.kind == AnswerKind.CUSTOMER_SIDE and state.report_ids == [report.report_id]:
            self._schedule(report.time + self.settings.lone_caller_window_s, "only_me", (key,))
        if answer.kind == AnswerKind.NEW_FAULT and not gasp and channel != Channel.CREW:
            fault_id = answer.fault_id
            self._schedule(report.time + self.settings.lone_caller_window_s, "lone", (fault_id,))
        return answer

    def _device_report(self, report: Report, device: int) -> Answer:
        """A SCADA trip (or a crew finding) settles a device at once."""
        before = self._next_fault
        node = device if device in self._parent else self._up_candidate(device)
        if node < 0:
            return rejected(report.report_id, f"{self._ids[device]} protects nothing")
        if report.says_power_back or "close" in report.text.lower():
            self._scada.discard(node)
            self._reevaluate(node)
            return Answer(AnswerKind.RESTORED, report.report_id)
        self._scada.add(node)
        self._reevaluate(node, adding=True)
        top = self._top_predicted(node)
        fault = self._root_fault[top]
        fault.report_ids.append(report.report_id)
        kind = AnswerKind.MERGED if fault.serial < before else AnswerKind.NEW_FAULT
        return Answer(kind, report.report_id, fault.fault_id, fault.status, fault.eta)

    def _power_back(self, report: Report, key: int, chain: tuple[int, ...]) -> Answer:
        """Supply is back at this meter: its whole chain is live."""
        self._restored_at[key] = report.time
        live = self._live_since
        for c in chain:
            live[c] = report.time
        top = self._top_predicted(chain[0])
        if top >= 0 and top in self._rolled:
            # The fault is closed under the device it names: re-judge a roll-up with all the
            # evidence first (its cached verdict may be a few reports old).
            self._roll_cache.pop(top, None)
            self._reevaluate(top)
            top = self._top_predicted(chain[0])
        fault_id = None
        if top >= 0 and key not in self._out and top not in self._confirmed:
            # A neighbour who never lost supply shows the lone caller's area is live: the
            # lone caller's problem is inside their own installation (no crew needed).
            self._judge_customer_side(self._root_fault[top])
        elif top >= 0:
            fault = self._root_fault[top]
            fault_id = fault.fault_id
            self._restore_fault(fault, top, report.time)
        elif key in self._out:
            self._remove_out(key)
        return Answer(AnswerKind.RESTORED, report.report_id, fault_id, meter_id=self._meter_id(key))

    def _meter_id(self, key: int) -> str | None:
        return self._ids[key] if key >= 0 else None

    # ------------------------------------------------------------------ counters
    def _eff_meters(self, c: int) -> int:
        """Distinct meters out below ``c``; one "only me" caller alone does not count, and
        ambiguous fixes count only where no identified meter is out (they may be the same
        household located twice)."""
        n = self._n_out.get(c, 0)
        if n >= 2:
            return n
        return self._n_strong.get(c, 0) or (1 if self._n_area.get(c, 0) else 0)

    def _status(self, c: int, adding: bool = False) -> int:
        """0 = not out, 1 = provisionally out (one caller), 2 = confirmed out.

        Only evidence, never a prediction, rolls up: a device above counts the reports
        below it part by part (see :class:`RollUpRule`). With ``adding`` (evidence only
        grew) a confirmed device stays confirmed without re-checking.
        """
        if adding and c in self._confirmed and c not in self._rolled:
            return 2
        if c in self._scada:
            return 2
        rule = self._rule[c]
        gasps = self._n_gasp.get(c, 0)
        if rule.last_gasp_count and gasps >= rule.last_gasp_count:
            return 2
        eff = self._eff_meters(c)
        direct = 0
        if eff and rule.meters_out(eff, max(self._direct[c], 1)):
            direct = 2 if eff >= 2 or gasps else 1
            if direct == 2:
                self._rolled.discard(c)
                return 2
        # A roll-up is re-judged whenever evidence below changes: later reports may show
        # that a part which looked dark early in the storm is in fact quiet.
        parts = self._parts_out.get(c, 0)
        if parts >= max(2, min(rule.min_parts, self._n_parts[c])):
            total = self._sub_out.get(c, 0)
            gasps_below = self._sub_gasp.get(c, 0)
            cached = self._roll_cache.get(c)
            if (
                adding
                and cached is not None
                and cached[1] == parts
                and total <= cached[0]
                and gasps_below <= cached[2]
            ):
                rolls = cached[3]  # little new evidence since the last full check
            else:
                # Re-checked once reports or last gasps below grew by a tenth — and at every
                # one while they are few, where one more report can make a part a solid
                # witness or reach the rule's minimum.
                rolls = self._rolls_up(c, rule)
                self._roll_cache[c] = (_grown(total), parts, _grown(gasps_below), rolls)
            if rolls:
                self._rolled.add(c)
                return 2
        self._rolled.discard(c)
        return direct

    def _rolls_up(self, c: int, rule: RollUpRule) -> bool:
        """Do the reporting parts below ``c`` add up to one outage of ``c``?

        If ``c`` is out, all its parts are dark and report at one common rate, estimated
        from all of them together. A part with a last gasp is certainly dark; any other part
        must not be implausibly quiet at that rate (Poisson lower tail ≥ ``silence_p``).
        AMI backhaul fails area by area in a storm, so outside one transformer area quiet
        parts are judged at the pooled *call* rate.
        """
        parts: list[tuple[int, int, int]] = []  # (customers, reports, gasps)
        keys: list[int] = []  # the part's device, -1 for the directly attached meters
        direct = self._direct[c]
        if direct:
            keys.append(-1)
            parts.append(
                (
                    direct,
                    self._n_strong.get(c, 0) + self._n_area.get(c, 0),
                    self._n_gasp.get(c, 0),
                )
            )
        sub = self._sub_out
        sub_gasp = self._sub_gasp
        customers = self._customers
        for k in self._kids.get(c, ()):
            n = customers[k]
            if n:
                keys.append(k)
                parts.append((n, sub.get(k, 0), sub_gasp.get(k, 0)))
        seen_customers = total = reports = gasps = solid = 0
        for n, r, g in parts:
            total += n
            reports += r
            gasps += g
            if r:
                seen_customers += n
                if r >= 2 or g:
                    solid += 1
        # Parts with a single report may be a stray fix or a customer-side fault: they are
        # judged for quietness below but do not count as independent witnesses.
        if solid < rule.min_solid_parts:
            return False
        if not seen_customers or seen_customers < rule.min_share * total:
            return False
        if reports < rule.min_reports or reports < rule.min_rate * seen_customers:
            return False
        if not self._went_dark_together(c):
            return False
        # Inside one transformer area the AMI concentrator is shared: if some meters of it
        # sent last gasps, the backhaul works, and quiet parts are judged at the full rate.
        # Elsewhere a part without gasps may simply have lost its backhaul: compare its
        # calls with the call rate of the whole (people call at much the same rate).
        full = c in self._in_area and gasps > 0
        rate = (reports if full else reports - gasps) / total
        quiet_reports = 0
        quiet_expected = 0.0
        quiet_areas = 0
        quiet: list[tuple[int, int]] = []  # (device, customers) of the quiet parts
        threshold = rule.silence_p
        # Below an MV device, parts holding several transformer areas are weighed area by
        # area (see below); here they only face the single-part test.
        by_area = c not in self._in_area
        for k, (n, r, g) in zip(keys, parts, strict=True):
            if g:
                continue
            expected = rate * n
            if r >= expected:
                continue
            if _poisson_cdf(r, expected) < threshold:
                return False
            if by_area and k >= 0 and k not in self._is_transformer:
                continue
            quiet_reports += r
            quiet_expected += expected
            quiet_areas += self._areas.get(k, 0) if k >= 0 else 0
            quiet.append((k, n))
        # A part that reports may still hide quiet transformer areas: a flood darkens most
        # transformers of a recloser zone one by one, and every lateral then has callers,
        # but the areas the water missed stay silent. If ``c`` were out they would be dark
        # too, so each quiet area weighs in like a quiet part.
        # A part that is itself confirmed out has already weighed its own quiet areas: under
        # either explanation (``c`` out, or that part out on its own) they are dark, so their
        # silence tells the two apart no further.
        if by_area:
            confirmed = self._confirmed
            for k in keys:
                if k < 0 or k in self._is_transformer or k in confirmed:
                    continue
                for a in self._area_list(k):
                    n = customers[a]
                    if not n or sub_gasp.get(a, 0):
                        continue
                    r = sub.get(a, 0)
                    expected = rate * n
                    if r >= expected:
                        continue
                    quiet_reports += r
                    quiet_expected += expected
                    quiet_areas += 1
                    quiet.append((a, n))
        # All quiet parts together must be plausible too (many small silences add up). Where
        # meters of this device did gasp, AMI is deployed: a dark area without a single gasp
        # needs its backhaul to have failed, which each area does only now and then.
        likelihood = _poisson_cdf(quiet_reports, quiet_expected)
        if gasps and not full and quiet_areas:
            likelihood *= self._silent_areas_likelihood(quiet, parts)
        # The alternative to "c is out" is one independent fault per reporting part; each
        # solid part beyond two makes that explanation a further prior factor less likely.
        if solid > 2:
            threshold *= self.settings.independent_fault_prior ** (solid - 2)
        return likelihood >= threshold

    def _went_dark_together(self, c: int) -> bool:
        """Could the parts below ``c`` that sent last gasps have lost supply at one instant?

        Meters gasp 30–45 s after they lose supply, so one outage of ``c`` makes every dark
        part gasp within a minute. Parts (transformer areas below an MV device) whose gasps
        lie hours apart failed one by one, as transformers do in a flood. The largest group
        of parts that gasped together must hold at least two parts and at least half of the
        gasping ones (the others may be older nested outages).
        """
        units = self._area_list(c) if c not in self._in_area else self._kids.get(c, ())
        count, total = self._sub_gasp, self._sub_gasp_time
        times = sorted(total[u] / count[u] for u in units if count.get(u, 0) > 0)
        if len(times) < 2:
            return True
        window = self.settings.simultaneous_gasp_s
        best = run = 1
        for a, b in itertools.pairwise(times):
            run = run + 1 if b - a <= window else 1
            best = max(best, run)
        return best >= 2 and 2 * best >= len(times)

    def _area_list(self, c: int) -> tuple[int, ...]:
        """Transformer areas at or below candidate ``c`` (cached)."""
        cached = self._area_lists.get(c)
        if cached is None:
            if c in self._is_transformer:
                cached = (c,)
            else:
                cached = tuple(a for k in self._kids.get(c, ()) for a in self._area_list(k))
            self._area_lists[c] = cached
        return cached

    def _silent_areas_likelihood(
        self, quiet: list[tuple[int, int]], parts: list[tuple[int, int, int]]
    ) -> float:
        """P(no last gasp at all from the quiet parts | they are dark).

        An area stays silent when its backhaul failed, or when none of its meters has AMI.
        The AMI share is estimated from the parts that did gasp (gasps per customer there);
        a 3-customer pole-top transformer is often silent, a 200-customer one hardly ever.
        """
        gasping = [(n, g) for n, _, g in parts if g]
        share = min(0.95, sum(g for _, g in gasping) / max(sum(n for n, _ in gasping), 1))
        loss = self.settings.ami_backhaul_loss
        likelihood = 1.0
        for k, n in quiet:
            areas = self._areas.get(k, 0) if k >= 0 else 0
            if not areas:
                continue
            per_area = n / areas
            likelihood *= (loss + (1.0 - loss) * (1.0 - share) ** per_area) ** areas
        return likelihood

    def _apply(self, c: int, status: int) -> tuple[bool, bool]:
        """Store a new status; returns (prediction changed, confirmation changed)."""
        was_pred = c in self._pred
        was_conf = c in self._confirmed
        now_pred, now_conf = status >= 1, status == 2
        if now_conf != was_conf:
            parent = self._parent[c]
            if now_conf:
                self._confirmed.add(c)
                if parent >= 0:
                    self._child_out[parent] = self._child_out.get(parent, 0) + 1
            else:
                self._confirmed.discard(c)
                if parent >= 0:
                    self._child_out[parent] -= 1
        if now_pred != was_pred:
            if now_pred:
                self._pred.add(c)
            else:
                self._pred.discard(c)
        return now_pred != was_pred, now_conf != was_conf

    def _reevaluate(self, c: int, withdrawn_as: str = "withdrawn", adding: bool = False) -> None:
        """Recompute predictions from ``c`` up to its source (evidence changed on the way)."""
        confirmed, rolled, parent = self._confirmed, self._rolled, self._parent
        while c >= 0:
            if adding and c in confirmed and c not in rolled:
                c = parent[c]  # more evidence cannot undo a direct confirmation
                continue
            pred_changed, _ = self._apply(c, self._status(c, adding))
            if pred_changed:
                if c in self._pred:
                    self._became_predicted(c)
                else:
                    self._became_unpredicted(c, withdrawn_as)
            c = parent[c]

    def _add_out(self, key: int, state: _Out) -> None:
        leaf = state.leaf
        self._out[key] = state
        self._count(key, state, +1)
        top = self._top_predicted(leaf)
        if top >= 0:
            fault = self._root_fault[top]
            fault.meters.add(key)
            fault.report_ids.extend(state.report_ids)
        else:
            for c in self.chain(leaf):
                self._stray_below.setdefault(c, set()).add(key)
        self._reevaluate(leaf, adding=True)

    def _remove_out(
        self, key: int, reevaluate: bool = True, withdrawn_as: str = FaultStatus.WITHDRAWN
    ) -> _Out:
        state = self._out.pop(key)
        leaf = state.leaf
        self._count(key, state, -1)
        for c in self.chain(leaf):
            stray = self._stray_below.get(c)
            if stray is not None:
                stray.discard(key)
        top = self._top_predicted(leaf)
        if top >= 0:
            self._root_fault[top].meters.discard(key)
        if reevaluate:
            self._reevaluate(leaf, withdrawn_as)
        return state

    def _top_predicted(self, leaf: int) -> int:
        top = -1
        pred = self._pred
        for c in self.chain(leaf):
            if c in pred:
                top = c
        return top

    # ------------------------------------------------------------------ roots and faults
    def _new_fault(self, device: int, time: float) -> Fault:
        fault = Fault(f"F{self._next_fault:05d}", device, time, serial=self._next_fault)
        self._next_fault += 1
        self.faults[fault.fault_id] = fault
        return fault

    def _set_root(self, c: int, fault: Fault) -> None:
        fault.device = c
        fault.status = FaultStatus.OPEN
        self._root_fault[c] = fault
        for a in self.chain(c)[1:]:
            self._roots_below.setdefault(a, set()).add(c)

    def _unset_root(self, c: int) -> Fault:
        fault = self._root_fault.pop(c)
        for a in self.chain(c)[1:]:
            below = self._roots_below.get(a)
            if below is not None:
                below.discard(c)
        return fault

    def _became_predicted(self, c: int) -> None:
        for a in self.chain(c)[1:]:
            if a in self._pred:
                return  # inside an existing fault: nothing to restructure
        absorbed = [self._unset_root(r) for r in list(self._roots_below.get(c, ()))]
        strays = list(self._stray_below.get(c, ()))
        times = [self._out[k].first_time for k in strays]
        if absorbed:
            absorbed.sort(key=lambda f: f.first_report_time)
            fault = absorbed[0]
            for other in absorbed[1:]:
                fault.meters |= other.meters
                fault.report_ids.extend(other.report_ids)
                fault.first_report_time = min(fault.first_report_time, other.first_report_time)
                other.status = FaultStatus.MERGED
                other.merged_into = fault.fault_id
                self._dormant[other.device] = other
                other.meters = set()
        elif c in self._dormant:
            fault = self._dormant.pop(c)
            fault.status = FaultStatus.OPEN
            fault.merged_into = None
        else:
            fault = self._new_fault(c, min(times) if times else self.clock)
        for key in strays:
            state = self._out[key]
            for a in self.chain(state.leaf):
                stray = self._stray_below.get(a)
                if stray is not None:
                    stray.discard(key)
            if key not in fault.meters:
                fault.meters.add(key)
                fault.report_ids.extend(state.report_ids)
                if state.strong is False and key >= 0:
                    self.updates.append(
                        Answer(
                            AnswerKind.MERGED,
                            state.report_ids[-1],
                            fault.fault_id,
                            fault.status,
                            meter_id=self._ids[key],
                            reason="neighbours reported too: now part of a grid fault",
                        )
                    )
        if times:
            fault.first_report_time = min(fault.first_report_time, *times)
        self._set_root(c, fault)

    def _became_unpredicted(self, c: int, status: str = FaultStatus.WITHDRAWN) -> None:
        if c not in self._root_fault:
            return
        fault = self._unset_root(c)
        self._redistribute(fault, status)

    def _redistribute(self, fault: Fault, status: str) -> None:
        """A root lost its prediction: its meters go to the predicted roots below, or stray."""
        groups: dict[int, list[int]] = {}
        for key in fault.meters:
            state = self._out.get(key)
            if state is None:
                continue
            groups.setdefault(self._top_predicted(state.leaf), []).append(key)
        strays = groups.pop(-1, [])
        for key in strays:
            for c in self.chain(self._out[key].leaf):
                self._stray_below.setdefault(c, set()).add(key)
        heir = -1
        if status == FaultStatus.WITHDRAWN:
            heir = max(groups, key=lambda r: len(groups[r]), default=-1)
        reports_of = {k: self._out[k].report_ids for k in fault.meters if k in self._out}
        if heir >= 0:
            # The fault moves down to the largest surviving part and keeps its id.
            fault.meters = set()
            fault.report_ids = []
        for root, keys in groups.items():
            if root in self._root_fault:
                target = self._root_fault[root]
            else:
                if root == heir:
                    target = fault
                else:
                    target = self._dormant.pop(root, None) or self._new_fault(
                        root, min(self._out[k].first_time for k in keys)
                    )
                self._set_root(root, target)
            for key in keys:
                target.meters.add(key)
                target.report_ids.extend(reports_of[key])
        if heir < 0:
            fault.status = status

    # ------------------------------------------------------------------ restoration
    def _restore_fault(self, fault: Fault, root: int, time: float) -> None:
        """Supply is back below ``root``: close the fault, keep the still-dark meters."""
        fault.status = FaultStatus.RESTORED
        fault.restored_time = time
        self._unset_root(root)
        self._scada.discard(root)
        members = list(fault.meters)
        dark: list[tuple[int, _Out]] = []
        touched: set[int] = set()
        presumed: list[tuple[int, _Out]] = []
        for key in members:
            state = self._out.get(key)
            if state is None:
                continue
            if self._restored_at.get(key, -math.inf) < time:
                (dark if state.gasped else presumed).append((key, state))
            self._silent_remove(key, state)
            touched.add(state.leaf)
        self._recompute_region(touched, root)
        if dark:
            self._schedule(time + self.settings.restore_grace_s, "redark", (time, dark))
        if presumed:
            self._presumed[root] = (time, presumed)
        else:
            self._presumed.pop(root, None)

    def _silent_remove(self, key: int, state: _Out) -> None:
        del self._out[key]
        self._count(key, state, -1)

    def _count(self, key: int, state: _Out, sign: int) -> None:
        """Add (+1) or take away (-1) one out meter's evidence at its leaf."""
        leaf = state.leaf
        if state.strong:
            # Strong evidence per subtree, and how many parts of each device report.
            sub = self._sub_out
            parts = self._parts_out
            parent = self._parent
            direct_before = self._n_strong.get(leaf, 0) + self._n_area.get(leaf, 0)
            if (direct_before == 0 and sign > 0) or (direct_before == 1 and sign < 0):
                parts[leaf] = parts.get(leaf, 0) + sign
            gasp_sub = self._sub_gasp if state.gasped else None
            gasp_time = self._sub_gasp_time
            when = 0.0
            if state.gasped:
                if self._epoch is None:
                    self._epoch = state.gasp_time
                when = sign * (state.gasp_time - self._epoch)
            for c in self.chain(leaf):
                before = sub.get(c, 0)
                sub[c] = before + sign
                if gasp_sub is not None:
                    gasp_sub[c] = gasp_sub.get(c, 0) + sign
                    gasp_time[c] = gasp_time.get(c, 0.0) + when
                if (before == 0 and sign > 0) or (before == 1 and sign < 0):
                    p = parent[c]
                    if p >= 0:
                        parts[p] = parts.get(p, 0) + sign
        if key < 0:
            if state.strong:
                self._n_area[leaf] = self._n_area.get(leaf, 0) + sign
            return
        self._n_out[leaf] = self._n_out.get(leaf, 0) + sign
        if state.strong:
            self._n_strong[leaf] = self._n_strong.get(leaf, 0) + sign
        if state.gasped:
            self._n_gasp[leaf] = self._n_gasp.get(leaf, 0) + sign

    def _recompute_region(self, leaves: set[int], root: int) -> None:
        """Re-derive predictions bottom-up for the chains of ``leaves`` up to ``root``."""
        stop = set(self.chain(root)[1:])
        nodes: set[int] = set()
        for leaf in leaves:
            for c in self.chain(leaf):
                if c in stop:
                    break
                nodes.add(c)
        nodes.add(root)
        depth = {c: len(self.chain(c)) for c in nodes}
        for c in sorted(nodes, key=depth.__getitem__, reverse=True):
            self._apply(c, self._status(c))
        # Predictions that survive (SCADA-settled devices) become roots of their own.
        for c in sorted(nodes, key=depth.__getitem__):
            if c in self._pred and c not in self._root_fault and self._top_predicted(c) == c:
                self._became_predicted(c)
        if root >= 0 and self._parent.get(root, -1) >= 0:
            self._reevaluate(self._parent[root])

    def _redark(self, restored_time: float, dark: list[tuple[int, _Out]]) -> None:
        """Meters that gasped and never came back after a restoration: a nested outage."""
        for key, state in dark:
            if self._restored_at.get(key, -math.inf) >= restored_time or key in self._out:
                continue
            again = _Out(state.leaf, True, True, state.first_time, state.scope, state.report_ids)
            again.gasp_time = state.gasp_time
            self._add_out(key, again)

    def _still_dark(self, time: float, leaf: int, chain: tuple[int, ...]) -> None:
        """An outage call from inside a restored fault: its cable may hide a nested outage.

        A restoration proves live only the chains of the meters that said so (AMI restore,
        "power is back"); the other callers of the restored fault were presumed restored.
        When someone on a cable nothing proved live calls again, the presumed-restored
        callers of that cable (the caller's nearest device) are taken to be dark again, and
        the roll-up rules place the nested fault among them and later callers.
        """
        if self._live_since.get(leaf, -math.inf) >= self._presumed_since(chain):
            return  # the caller's own cable is proven live: not a nested outage
        window = self.settings.nested_callback_window_s
        for root in chain:
            entry = self._presumed.get(root)
            if entry is None:
                continue
            restored, presumed = entry
            if time > restored + window:
                del self._presumed[root]  # too long ago: a call now is a new story
                continue
            if time <= restored:
                continue
            again = [(k, s) for k, s in presumed if s.leaf == leaf]
            if not again:
                continue
            self._presumed[root] = (restored, [(k, s) for k, s in presumed if s.leaf != leaf])
            for key, state in again:
                if key not in self._out and self._restored_at.get(key, -math.inf) < restored:
                    self._add_out(key, state)

    def _presumed_since(self, chain: tuple[int, ...]) -> float:
        """The latest restoration above this chain whose callers were presumed restored."""
        return max((self._presumed[c][0] for c in chain if c in self._presumed), default=math.inf)

    # ------------------------------------------------------------------ lone callers
    def _schedule(self, when: float, what: str, payload: tuple) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, what, payload))

    def _judge_lone_caller(self, fault_id: str) -> None:
        """Nobody else spoke up: a fault resting on one or two stray calls is customer-side.

        After the window, a fault with no last gasp and no SCADA trip is withdrawn when it
        rests on one calling household with at least ``lone_caller_min_peers`` quiet
        neighbours in its transformer area, or on two households where a real outage of the
        area would almost surely have drawn more reports (``expected_report_rate``). Its
        callers get the self-check guidance.
        """
        fault = self.faults.get(fault_id)
        if fault is None or fault.status != FaultStatus.OPEN:
            return
        c = fault.device
        if self._root_fault.get(c) is not fault or c in self._scada:
            return
        if self._sub_gasp.get(c, 0):
            return
        # Households behind the fault: identified meters (an "only me" caller counts too: a
        # neighbour's report promotes it) and GPS fixes, which may be one of those again.
        identified = sum(1 for k in fault.meters if k >= 0)
        fixes = len(fault.meters) - identified
        reports = max(identified, fixes, self._sub_out.get(c, 0))
        if reports > self.settings.lone_caller_max_households:
            return
        # Silence is judged over the whole transformer area: its other households are the
        # neighbours who would have noticed (one LV cable may serve only a few of them).
        area = self._area_of.get(c, -1)
        scope = area if area >= 0 and not self._sub_gasp.get(area, 0) else c
        peers = self._customers[scope] - self._sub_out.get(scope, 0)
        if reports <= 1:
            min_peers = self.settings.lone_caller_min_peers
            # A pole-top transformer may serve one or two homes: its neighbours then hang
            # off the next transformers of the same lateral. A lone caller there is far more
            # often a fault inside the home than a transformer fault that nobody else on the
            # street noticed.
            for above in self.chain(scope)[1:]:
                if peers >= min_peers:
                    break
                scope = above
                peers = self._customers[above] - self._sub_out.get(above, 0)
            if peers < min_peers:
                return  # too few neighbours for silence to mean anything
        else:
            # Two households: withdrawn where a real outage would surely have drawn more.
            # ("Only me" says little here: one outage caller in twenty says it, and two
            # unrelated faults inside two homes on one cable within the hour are rare.)
            expected = self.settings.expected_report_rate * self._customers[c]
            if _poisson_cdf(reports, expected) >= self.settings.lone_caller_silence_p:
                return
        self._judge_customer_side(fault)

    def _judge_customer_side(self, fault: Fault) -> None:
        """Withdraw a fault as customer-side: its households get self-check guidance."""
        members = [(k, self._out[k]) for k in fault.meters if k in self._out]
        for key, state in members:
            state.judged_customer_side = True
            self._remove_out(key, withdrawn_as=FaultStatus.CUSTOMER_SIDE)
            self._customer_side[key] = state.report_ids
        if self._root_fault.get(fault.device) is fault:
            return  # other evidence keeps the fault: its members stay with it
        if fault.status == FaultStatus.WITHDRAWN:
            fault.status = FaultStatus.CUSTOMER_SIDE
        advice = customer_side("", None)
        for key, state in members:
            self.updates.append(
                Answer(
                    AnswerKind.CUSTOMER_SIDE,
                    state.report_ids[0],
                    fault.fault_id,
                    meter_id=self._ids[key] if key >= 0 else None,
                    guidance=advice.guidance,
                    paid_electrician=advice.paid_electrician,
                    reason="no neighbour reported an outage: likely inside your installation",
                )
            )

    def _settle_customer_side(self, key: int) -> None:
        """The window passed without neighbours: this household's fault is its own.

        It leaves the outage evidence (a neighbour reporting hours later is a new story);
        further calls from it are consults answered with the same guidance.
        """
        state = self._out.get(key)
        if state is None or state.strong or self._top_predicted(state.leaf) >= 0:
            return
        self._remove_out(key)
        self._customer_side[key] = state.report_ids

    def _expire_only_me(self, key: int) -> None:
        self._settle_customer_side(key)


def _grown(count: int) -> int:
    """How far a count may grow before a cached roll-up verdict is checked again."""
    return count if count < 20 else int(count * 1.1)


def _poisson_cdf(k: int, mean: float) -> float:
    """P(X ≤ k) for X ~ Poisson(mean), summed directly (k is small in practice)."""
    term = cdf = math.exp(-mean)
    for i in range(1, k + 1):
        term *= mean / i
        cdf += term
    return cdf
