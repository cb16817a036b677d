"""Which crew goes where: candidates, greedy nearest-by-road, and storm-mode re-optimisation.

- A *candidate* is a crew on shift with the skills the device needs. An available crew
  starts from where it is; a busy crew from the site of its last job, once its remaining
  work (estimated by device kind) is done.
- One new fault: the candidate that *arrives* first by road wins (the road router's
  bounded search for free crews, one reverse search for busy ones).
- Many open faults (storm mode): a minimum-cost assignment over the crew × fault
  travel-time matrix (scipy ``linear_sum_assignment``), where cost is arrival time minus a
  priority bonus, and a crew already committed to a job keeps it unless moving it gains more
  than the hysteresis margin.

All travel times come from a :class:`~gridmend.geo.routing.Router`; nothing here measures
straight lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from gridmend.dispatch.crews import Skill
from gridmend.geo.routing import Router
from gridmend.topology.elements import Kind
from gridmend.topology.network import Topology

LonLat = tuple[float, float]

#: Typical on-site time to make safe and repair, by the kind of device that failed (minutes).
REPAIR_MINUTES: dict[Kind, float] = {
    Kind.SOURCE: 240.0,
    Kind.POWER_TRANSFORMER: 240.0,
    Kind.BREAKER: 120.0,
    Kind.RECLOSER: 90.0,
    Kind.SECTIONALISER: 90.0,
    Kind.LOAD_BREAK_SWITCH: 60.0,
    Kind.DISCONNECTOR: 60.0,
    Kind.LINE: 150.0,
    Kind.BUSBAR: 120.0,
    Kind.FUSE: 45.0,
    Kind.TRANSFORMER: 180.0,
    Kind.METER: 30.0,
}
#: However long a job has run, assume at least this much is left (minutes).
MIN_WORK_LEFT_MIN = 10.0


def repair_estimate_s(kind: Kind) -> float:
    return REPAIR_MINUTES.get(kind, 90.0) * 60.0


def work_left_s(kind: Kind, on_site_since: float | None, now: float) -> float:
    """Remaining on-site work for a job of this device kind (full estimate if not started)."""
    full = repair_estimate_s(kind)
    if on_site_since is None:
        return full
    return max(full - max(now - on_site_since, 0.0), MIN_WORK_LEFT_MIN * 60.0)


def required_skills(topology: Topology, device: int) -> frozenset[Skill]:
    """Skills a crew needs for a fault on ``device``: MV above the transformer, LV below it."""
    kind = topology.kind(device)
    if kind in (Kind.TRANSFORMER, Kind.SOURCE, Kind.POWER_TRANSFORMER):
        return frozenset({Skill.MV})
    if kind == Kind.METER:
        return frozenset({Skill.LV})
    try:
        chain = topology.chain(device)
    except (KeyError, IndexError):
        chain = ()
    below_transformer = any(topology.kind(e) == Kind.TRANSFORMER for e in chain[1:])
    return frozenset({Skill.LV}) if below_transformer else frozenset({Skill.MV})


@dataclass(frozen=True)
class Candidate:
    """A crew that could take a job: where it sets off from and when it is free."""

    crew_id: str
    origin: LonLat
    ready_in_s: float = 0.0  # 0 for an available crew; remaining work for a busy one
    committed_to: str | None = None  # the job it is assigned/travelling to (re-optimisation)


@dataclass(frozen=True)
class Choice:
    """The crew picked for one fault and when it would get there."""

    crew_id: str
    travel_s: float
    ready_in_s: float
    approximate: bool

    @property
    def arrival_in_s(self) -> float:
        return self.ready_in_s + self.travel_s


class OriginCache:
    """Crew positions placed on the road network once, reused while they do not change.

    A burst of faults asks "who is nearest" many times over the same crews; a router that
    can pre-snap points (the road router's public ``snap``) then skips that work per fault.
    """

    def __init__(self, router: Router) -> None:
        self._snap = getattr(router, "snap", None)
        self._key: tuple[LonLat, ...] | None = None
        self._value: object = None

    def prepare(self, origins: list[LonLat]) -> object:
        if self._snap is None:
            return origins
        key = tuple(origins)
        if key != self._key:
            self._key, self._value = key, self._snap(origins)
        return self._value


def choose_nearest(
    router: Router,
    destination: LonLat,
    candidates: Sequence[Candidate],
    cap_s: float = math.inf,
    origins: OriginCache | None = None,
) -> Choice | None:
    """The candidate that arrives first by road (None if none within ``cap_s`` of travel)."""
    free = [c for c in candidates if c.ready_in_s <= 0.0]
    busy = [c for c in candidates if c.ready_in_s > 0.0]
    best: Choice | None = None
    if free:
        points = [c.origin for c in free]
        prepared = origins.prepare(points) if origins is not None else points
        found = router.nearest(prepared, destination, cap_s)  # type: ignore[arg-type]
        if found.index >= 0:
            c = free[found.index]
            best = Choice(c.crew_id, found.seconds, 0.0, found.approximate)
    if busy:
        bound = best.arrival_in_s if best else math.inf
        ready = np.array([c.ready_in_s for c in busy])
        if ready.min() < bound:
            cap = min(cap_s, bound - float(ready.min()))
            times = router.times_from_many([c.origin for c in busy], destination, cap)
            arrival = ready + times
            k = int(np.argmin(arrival))
            if math.isfinite(arrival[k]) and arrival[k] < bound:
                c = busy[k]
                best = Choice(c.crew_id, float(times[k]), c.ready_in_s, router.approximate)
    return best


@dataclass(frozen=True)
class AssignmentSettings:
    """Knobs of storm-mode re-optimisation."""

    #: Faults farther than this by road from a crew are not considered for it in the main
    #: pass (storm cap: keeps the crew × fault matrix cheap) …
    cap_s: float = 10 * 60.0
    #: … crews left without a job get a second pass over the remaining faults up to this.
    fill_cap_s: float = 2 * 3600.0
    #: A committed crew is moved only if the plan gains more than this many seconds …
    hysteresis_s: float = 600.0
    #: … or this share of its current arrival time, whichever is larger …
    hysteresis_share: float = 0.25
    #: … plus this many priority points: an en-route crew is not diverted to work that is
    #: only one main-line step more urgent (see PriorityWeights.main_line).
    hysteresis_points: float = 5_000.0
    #: How many seconds of travel one priority point is worth.
    seconds_per_point: float = 1.0
    #: Bonus (seconds) for a pairing that still keeps the fault's arrival promise.
    on_time_bonus_s: float = 0.0


@dataclass(frozen=True)
class PlannedJob:
    crew_id: str
    fault_id: str
    travel_s: float
    arrival_in_s: float
    changed: bool  # True when this crew was not already committed to this fault


@dataclass
class Plan:
    """Result of a batch re-optimisation."""

    jobs: list[PlannedJob] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)  # faults left waiting for a crew
    released: list[tuple[str, str]] = field(default_factory=list)  # (crew, fault) bounced

    def crew_of(self, fault_id: str) -> str | None:
        return next((j.crew_id for j in self.jobs if j.fault_id == fault_id), None)

    def fault_of(self, crew_id: str) -> str | None:
        return next((j.fault_id for j in self.jobs if j.crew_id == crew_id), None)


#: Cost of a pair that must not be chosen (no skill, unreachable within the cap).
_FORBIDDEN = 1.0e12


def reoptimise(
    router: Router,
    candidates: Sequence[Candidate],
    faults: Sequence[tuple[str, LonLat]],
    priorities: Sequence[float],
    eligible: np.ndarray | None = None,
    settings: AssignmentSettings | None = None,
    must_serve: Sequence[bool] | np.ndarray | None = None,
    time_left_s: Sequence[float] | np.ndarray | None = None,
) -> Plan:
    """Minimum-cost crew → fault assignment (one next job per crew) with hysteresis.

    ``faults`` are (fault id, location); ``priorities`` their urgency scores;
    ``eligible[i, j]`` says whether crew i has the skills for fault j. The main pass only
    looks ``cap_s`` far; crews it leaves idle get a second pass up to ``fill_cap_s``, and a
    ``must_serve`` fault (critical customers) that is still waiting takes the crew that
    reaches it first from any job that is not itself must-serve.
    """
    s = settings or AssignmentSettings()
    n_c, n_f = len(candidates), len(faults)
    if n_c == 0 or n_f == 0:
        return Plan(unassigned=[f for f, _ in faults])
    allowed = np.ones((n_c, n_f), bool) if eligible is None else np.asarray(eligible, bool)
    bonus = s.seconds_per_point * np.asarray(priorities, dtype=np.float64)
    left_s = None if time_left_s is None else np.asarray(time_left_s, dtype=np.float64)
    crews = np.arange(n_c)
    cols = np.arange(n_f)
    pairs = _solve(router, candidates, faults, crews, cols, allowed, bonus, s.cap_s, s, left_s)
    idle = np.setdiff1d(crews, [i for i, _, _ in pairs])
    left = np.setdiff1d(cols, [j for _, j, _ in pairs])
    if s.fill_cap_s > s.cap_s and idle.size and left.size:
        pairs += _solve(
            router, candidates, faults, idle, left, allowed, bonus, s.fill_cap_s, s, left_s
        )
    if must_serve is not None:
        pairs = _serve_critical(router, candidates, faults, pairs, allowed, bonus, must_serve, s)
    plan = Plan()
    for i, j, travel in pairs:
        c = candidates[i]
        fid = faults[j][0]
        changed = c.committed_to != fid
        plan.jobs.append(PlannedJob(c.crew_id, fid, travel, c.ready_in_s + travel, changed))
    taken = {faults[j][0] for _, j, _ in pairs}
    plan.unassigned = [fid for fid, _ in faults if fid not in taken]
    given = {job.crew_id: job.fault_id for job in plan.jobs}
    fault_ids = {fid for fid, _ in faults}
    for c in candidates:
        if c.committed_to in fault_ids and given.get(c.crew_id) != c.committed_to:
            plan.released.append((c.crew_id, c.committed_to))
    return plan


def _serve_critical(
    router: Router,
    candidates: Sequence[Candidate],
    faults: Sequence[tuple[str, LonLat]],
    pairs: list[tuple[int, int, float]],
    allowed: np.ndarray,
    bonus: np.ndarray,
    must_serve: Sequence[bool] | np.ndarray,
    s: AssignmentSettings,
) -> list[tuple[int, int, float]]:
    """Give each still-waiting must-serve fault the crew that reaches it first (bumping a
    lesser job), most urgent first."""
    critical = np.asarray(must_serve, dtype=bool)
    served = {j for _, j, _ in pairs}
    waiting = [j for j in np.flatnonzero(critical).tolist() if j not in served]
    waiting.sort(key=lambda j: -bonus[j])
    job_of = {i: (j, t) for i, j, t in pairs}
    for j in waiting:
        free = [
            i
            for i in range(len(candidates))
            if allowed[i, j] and not (i in job_of and critical[job_of[i][0]])
        ]
        if not free:
            continue
        pick = choose_nearest(router, faults[j][1], [candidates[i] for i in free], s.fill_cap_s)
        if pick is None:
            continue
        i = next(i for i in free if candidates[i].crew_id == pick.crew_id)
        job_of[i] = (j, pick.travel_s)
    return [(i, j, t) for i, (j, t) in job_of.items()]


def _matrix_by_place(
    router: Router, origins: list[LonLat], destinations: list[LonLat], cap_s: float
) -> np.ndarray:
    """Travel matrix routed once per distinct origin: at the start of a storm most crews
    still stand at a handful of depots."""
    places, inverse = np.unique(np.asarray(origins, dtype=np.float64), axis=0, return_inverse=True)
    if len(places) == len(origins):
        return router.matrix(origins, destinations, cap_s=cap_s)
    unique = router.matrix([tuple(p) for p in places.tolist()], destinations, cap_s=cap_s)
    return unique[inverse.ravel()]


def _solve(
    router: Router,
    candidates: Sequence[Candidate],
    faults: Sequence[tuple[str, LonLat]],
    rows: np.ndarray,
    cols: np.ndarray,
    allowed: np.ndarray,
    bonus: np.ndarray,
    cap_s: float,
    s: AssignmentSettings,
    time_left_s: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """One capped matrix + linear_sum_assignment over a crew/fault subset: (i, j, travel)."""
    travel = _matrix_by_place(
        router, [candidates[i].origin for i in rows], [faults[j][1] for j in cols], cap_s
    )
    ready = np.array([candidates[i].ready_in_s for i in rows], dtype=np.float64)
    arrival = ready[:, None] + travel
    ok = np.isfinite(arrival) & allowed[np.ix_(rows, cols)]
    cost = np.where(ok, arrival - bonus[cols][None, :], _FORBIDDEN)
    if time_left_s is not None and s.on_time_bonus_s > 0:
        cost -= np.where(ok & (arrival <= time_left_s[cols][None, :]), s.on_time_bonus_s, 0.0)
    where = {faults[j][0]: k for k, j in enumerate(cols.tolist())}
    for r, i in enumerate(rows.tolist()):
        k = where.get(candidates[i].committed_to) if candidates[i].committed_to else None
        if k is not None and ok[r, k]:
            margin = max(s.hysteresis_s, s.hysteresis_share * arrival[r, k])
            cost[r, k] -= margin + s.seconds_per_point * s.hysteresis_points
    rr, cc = linear_sum_assignment(cost)
    keep = ok[rr, cc]
    return [
        (int(rows[r]), int(cols[c]), float(travel[r, c]))
        for r, c in zip(rr[keep].tolist(), cc[keep].tolist(), strict=True)
    ]
