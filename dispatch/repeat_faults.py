"""Repeated-fault register: places that keep failing, for asset managers.

Any line section, device or transformer area with two or more faults in a rolling 30 days
is listed with the causes found, customers affected, the count and the customer-minutes
lost. A *line section* is the stretch protected by one device: it is named by the nearest
protective device at or above the fault (or the line element itself when a crew pins the
fault to a span).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum

from gridmend.topology.elements import PROTECTIVE_KINDS, Kind
from gridmend.topology.network import Topology

DAY_S = 86_400.0


class Scope(StrEnum):
    DEVICE = "device"
    LINE_SECTION = "line_section"
    TRANSFORMER_AREA = "transformer_area"


@dataclass(frozen=True)
class FaultRecord:
    """One fault as the register remembers it."""

    fault_id: str
    device: int
    time: float  # first report
    customers: int
    restored_time: float | None = None
    cause: str | None = None  # e.g. "vegetation", "lightning", "cable joint"
    line_section: int | None = None  # a LINE element when the crew found the span

    def customer_minutes(self, now: float) -> float:
        end = self.restored_time if self.restored_time is not None else now
        return self.customers * max(end - self.time, 0.0) / 60.0


@dataclass(frozen=True)
class RepeatEntry:
    scope: Scope
    element: int
    element_id: str
    count: int
    fault_ids: tuple[str, ...]
    causes: dict[str, int]
    customers_affected: int  # largest single outage of the place
    customer_minutes: float

    def to_dict(self) -> dict[str, object]:
        return {
            "scope": self.scope.value,
            "element_id": self.element_id,
            "count": self.count,
            "fault_ids": list(self.fault_ids),
            "causes": self.causes,
            "customers_affected": self.customers_affected,
            "customer_minutes": round(self.customer_minutes, 1),
        }


@dataclass
class RepeatFaultRegister:
    """Faults by place, listed when a place fails repeatedly within the window."""

    topology: Topology
    window_days: float = 30.0
    min_count: int = 2
    records: dict[str, FaultRecord] = field(default_factory=dict)

    def add(self, record: FaultRecord) -> None:
        """Record or update a fault (same id: the later facts, e.g. cause, win)."""
        self.records[record.fault_id] = record

    def places(self, record: FaultRecord) -> list[tuple[Scope, int]]:
        """The device, line section and transformer area a fault belongs to."""
        topo = self.topology
        out: list[tuple[Scope, int]] = [(Scope.DEVICE, record.device)]
        kind = topo.kind(record.device)
        if record.line_section is not None:
            out.append((Scope.LINE_SECTION, record.line_section))
        elif kind == Kind.LINE:
            out.append((Scope.LINE_SECTION, record.device))
        else:
            section = next(
                (e for e in self._chain(record.device) if topo.kind(e) in PROTECTIVE_KINDS), None
            )
            if section is not None:
                out.append((Scope.LINE_SECTION, section))
        area = next(
            (e for e in self._chain(record.device) if topo.kind(e) == Kind.TRANSFORMER), None
        )
        if area is not None:
            out.append((Scope.TRANSFORMER_AREA, area))
        return out

    def _chain(self, element: int) -> tuple[int, ...]:
        topo = self.topology
        if topo.is_meter(element):
            return topo.meter_chain(element)
        try:
            return topo.chain(element)
        except (KeyError, IndexError):
            return ()

    def listing(self, now: float) -> list[RepeatEntry]:
        """Places with ≥ ``min_count`` faults in the ``window_days`` before ``now``."""
        start = now - self.window_days * DAY_S
        groups: dict[tuple[Scope, int], list[FaultRecord]] = defaultdict(list)
        for r in self.records.values():
            if r.device >= 0 and start < r.time <= now:
                for place in self.places(r):
                    groups[place].append(r)
        ids = self.topology.grid.element_ids
        entries = []
        for (scope, element), recs in groups.items():
            if len(recs) < self.min_count:
                continue
            recs.sort(key=lambda r: r.time)
            causes = Counter(r.cause or "unknown" for r in recs)
            entries.append(
                RepeatEntry(
                    scope=scope,
                    element=element,
                    element_id=ids[element],
                    count=len(recs),
                    fault_ids=tuple(r.fault_id for r in recs),
                    causes=dict(causes.most_common()),
                    customers_affected=max(r.customers for r in recs),
                    customer_minutes=sum(r.customer_minutes(now) for r in recs),
                )
            )
        return sorted(entries, key=lambda e: (-e.count, -e.customer_minutes, e.element_id))
