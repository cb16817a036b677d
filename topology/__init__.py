"""Grid topology: what feeds every meter, and what every device has below it."""

from gridmend.topology.elements import (
    CRITICAL_CLASSES,
    PROTECTIVE_KINDS,
    SWITCHING_KINDS,
    CustomerClass,
    Kind,
    ServiceClass,
)
from gridmend.topology.grid import Grid, GridBuilder, GridValidationError
from gridmend.topology.network import SwitchingRefused, SwitchResult, Topology, Trace

__all__ = [
    "CRITICAL_CLASSES",
    "PROTECTIVE_KINDS",
    "SWITCHING_KINDS",
    "CustomerClass",
    "Grid",
    "GridBuilder",
    "GridValidationError",
    "Kind",
    "ServiceClass",
    "SwitchResult",
    "SwitchingRefused",
    "Topology",
    "Trace",
]
