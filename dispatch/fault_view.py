"""What dispatch needs to know about a fault, decoupled from the inference engine.

:class:`FaultView` is a small frozen record; :func:`fault_view_for_device` builds one from
the topology alone (replays, CLI fault files) and :func:`fault_view_from_engine` adapts a
live :class:`~gridmend.dispatch.inference.Fault` using only the engine's public queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridmend.dispatch.crews import Skill
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
