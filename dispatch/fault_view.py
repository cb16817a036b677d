"""What dispatch needs to know about a fault, decoupled from the inference engine.

:class:`FaultView` is a small frozen record; :func:`fault_view_for_device` builds one from
the topology alone (replays, CLI fault files) and :func:`fault_view_from_engine` adapts a
live :class:`~gridmend.dispatch.inference.Fault` using only the engine's public queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from gridmend.dispatch.crews import Skill, parse_skills
from gridmend.dispatch.errors import DispatchError
from gridmend.dispatch.service_class import ServiceClassMap
from gridmend.topology.elements import ARRIVAL_PROMISE_MINUTES, Kind, ServiceClass
from gridmend.topology.network import Topology

if TYPE_CHECKING:  # the adapter only needs the engine's public methods
    from gridmend.dispatch.inference import Fault, OutageEngine

LonLat = tuple[float, float]


@dataclass(frozen=True)
class FaultView:
    """A fault as dispatch sees it: where, what device, who is waiting, since when."""

    fault_id: str
    device: int  # element index of the suspected device
    location: LonLat
    device_kind: Kind
    customers: int
    critical: int  # critical customers (hospital, water works, emergency command …) affected
    first_report_time: float
    service_class: ServiceClass = ServiceClass.RURAL
    required_skills: frozenset[Skill] | None = None  # None: derived from the device

    @property
    def promise_s(self) -> float:
        """Arrival promise for this fault's area, in seconds."""
        return ARRIVAL_PROMISE_MINUTES[self.service_class] * 60.0

    @property
    def promise_deadline(self) -> float:
        return self.first_report_time + self.promise_s

    def to_dict(self) -> dict[str, object]:
        return {
            "fault_id": self.fault_id,
            "device": self.device,
            "location": list(self.location),
            "device_kind": self.device_kind.value,
            "customers": self.customers,
            "critical": self.critical,
            "first_report_time": self.first_report_time,
            "service_class": self.service_class.value,
            "promise_minutes": ARRIVAL_PROMISE_MINUTES[self.service_class],
        }


def fault_view_for_device(
    topology: Topology,
    device: int,
    first_report_time: float,
    fault_id: str | None = None,
    service_map: ServiceClassMap | None = None,
) -> FaultView:
    """A fault on ``device`` with its customers counted from the topology."""
    kind = topology.kind(device)
    if kind in (Kind.LINE, Kind.BUSBAR, Kind.POWER_TRANSFORMER, Kind.METER):
        customers, critical = (
            (1, int(topology.is_critical(device))) if kind == Kind.METER else (0, 0)
        )
    else:
        customers = topology.customers_below(device)
        critical = len(topology.critical_below(device))
    service_map = service_map or ServiceClassMap(topology)
    return FaultView(
        fault_id=fault_id or topology.grid.element_ids[device],
        device=device,
        location=topology.grid.location(device),
        device_kind=kind,
        customers=int(customers),
        critical=int(critical),
        first_report_time=float(first_report_time),
        service_class=service_map.of(device),
    )


def fault_view_from_engine(
    engine: OutageEngine, fault: Fault, service_map: ServiceClassMap | None = None
) -> FaultView:
    """Adapt an inference-engine fault (public queries only: customers, critical, device)."""
    topology = engine.topology
    service_map = service_map or ServiceClassMap(topology)
    return FaultView(
        fault_id=fault.fault_id,
        device=int(fault.device),
        location=topology.grid.location(int(fault.device)),
        device_kind=topology.kind(int(fault.device)),
        customers=int(engine.customer_count(fault)),
        critical=len(engine.critical_customers(fault)),
        first_report_time=float(fault.first_report_time),
        service_class=service_map.of(int(fault.device)),
    )


class FaultFileError(DispatchError, ValueError):
    """A faults document that cannot be read; ``problems`` names each fault and field."""

    http_status = 422

    def __init__(self, problems: list[str], source: str = "faults") -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))


def _epoch(value: object) -> float:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return stamp.timestamp()


def fault_views_from_document(
    document: object, topology: Topology, service_map: ServiceClassMap | None = None
) -> list[FaultView]:
    """Faults from a JSON document: ``{"faults": [...]}`` (``gridmend infer`` output) or a list.

    Each fault needs ``device_id`` (or ``device``) and ``first_report_time`` (epoch seconds
    or ISO-8601 with zone); ``fault_id``, ``service_class`` and ``skills`` are optional.
    Faults whose ``status`` is not open are skipped.
    """
    items = document.get("faults") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise FaultFileError(['expected a list of faults or {"faults": [...]}'])
    service_map = service_map or ServiceClassMap(topology)
    index = topology.grid.index
    views: list[FaultView] = []
    problems: list[str] = []
    for k, item in enumerate(items):
        label = f"fault {k}"
        if not isinstance(item, dict):
            problems.append(f"{label}: not an object")
            continue
        label = f"fault {k} ({item.get('fault_id', 'no id')})"
        if item.get("status", "open") not in ("open", "suspected", "confirmed"):
            continue
        device_id = item.get("device_id", item.get("device"))
        if device_id is None:
            problems.append(f"{label}: field device_id missing")
            continue
        device = index.get(str(device_id))
        if device is None:
            problems.append(f"{label}: field device_id: unknown element {device_id!r}")
            continue
        try:
            reported = _epoch(item["first_report_time"])
        except KeyError:
            problems.append(f"{label}: field first_report_time missing")
            continue
        except ValueError as err:
            problems.append(f"{label}: field first_report_time: {err}")
            continue
        view = fault_view_for_device(
            topology, device, reported, str(item.get("fault_id") or device_id), service_map
        )
        try:
            if "service_class" in item:
                view = replace(view, service_class=ServiceClass(item["service_class"]))
            if "skills" in item:
                skills = item["skills"]
                text = ";".join(skills) if isinstance(skills, list) else str(skills)
                view = replace(view, required_skills=parse_skills(text))
        except ValueError as err:
            problems.append(f"{label}: {err}")
            continue
        views.append(view)
    if problems:
        raise FaultFileError(problems)
    return views
