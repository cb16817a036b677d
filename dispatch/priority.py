"""Which fault a crew should go to first: an explainable, configurable urgency score.

The score is a weighted sum of five parts. The default weights are spaced so that the
parts dominate in the order the 95598 practice asks for — critical customers, then main
line before branches, then customers affected, then time left to the arrival promise,
then waiting time — while an operator can still trade them off by changing weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridmend.dispatch.fault_view import FaultView
from gridmend.topology.elements import MAIN_LINE_RANK, Kind

#: The least urgent rank in MAIN_LINE_RANK (a single customer's service).
_LEAST_RANK = max(MAIN_LINE_RANK.values())


@dataclass(frozen=True)
class PriorityWeights:
    """Points per unit of each part (see module docstring for the default spacing)."""

    critical: float = 100_000.0  # once, when any critical customer is cut off
    critical_each: float = 1_000.0  # per further critical customer (capped at 10)
    main_line: float = 4_000.0  # per rank step above a single customer (breaker = 5 steps)
    customers: float = 1.0  # per customer affected …
    customers_cap: int = 3_000  # … up to this many (keeps main line ahead)
    promise: float = 1.0  # per minute the promise is closer (or overdue): 0 … 240 points
    waiting: float = 0.05  # per minute since the first report, up to 48 h


@dataclass(frozen=True)
class Priority:
    """A fault's urgency score and its parts (for the dispatcher's "why this one")."""

    fault_id: str
    score: float
    parts: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {"fault_id": self.fault_id, "score": round(self.score, 2), "parts": self.parts}


def main_line_rank(kind: Kind) -> int:
    """Upstream devices rank lower (more urgent); line sections count like a breaker zone."""
    if kind == Kind.LINE:
        return MAIN_LINE_RANK[Kind.SECTIONALISER]
    return MAIN_LINE_RANK.get(kind, _LEAST_RANK)


def priority_of(fault: FaultView, now: float, weights: PriorityWeights | None = None) -> Priority:
    """Urgency of one fault at ``now`` (higher first)."""
    w = weights or PriorityWeights()
    has_critical = 1.0 if fault.critical > 0 else 0.0
    extra_critical = float(min(max(fault.critical - 1, 0), 10))
    steps = float(_LEAST_RANK - main_line_rank(fault.device_kind))
    customers = float(min(fault.customers, w.customers_cap))
    slack_min = (fault.promise_deadline - now) / 60.0
    promise_pressure = float(min(max(120.0 - slack_min, 0.0), 240.0))  # 0 … 240
    waited_min = float(min(max(now - fault.first_report_time, 0.0) / 60.0, 48 * 60.0))
    parts = {
        "critical": w.critical * has_critical + w.critical_each * extra_critical,
        "main_line": w.main_line * steps,
        "customers": w.customers * customers,
        "promise": w.promise * promise_pressure,
        "waiting": w.waiting * waited_min,
    }
    return Priority(fault.fault_id, float(sum(parts.values())), parts)


def rank_faults(
    faults: list[FaultView], now: float, weights: PriorityWeights | None = None
) -> list[Priority]:
    """Faults from most to least urgent (ties: earliest report first)."""
    first = {f.fault_id: f.first_report_time for f in faults}
    scored = [priority_of(f, now, weights) for f in faults]
    return sorted(scored, key=lambda p: (-p.score, first[p.fault_id], p.fault_id))
