"""Element kinds and customer classes of a distribution grid.

The vocabulary every other room speaks: what a protective device is, which customers are
critical, which kinds of element have two terminals.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """Kinds of grid element.

    Buses (busbars and junctions) are the nodes; everything else hangs between or on them.
    """

    SOURCE = "source"  # HV/MV substation or grid infeed
    BUSBAR = "busbar"  # busbar or junction: a node of the grid
    LINE = "line"  # overhead line or cable section
    POWER_TRANSFORMER = "power_transformer"  # HV/MV transformer inside a substation
    BREAKER = "breaker"
    RECLOSER = "recloser"
    SECTIONALISER = "sectionaliser"
    FUSE = "fuse"
    LOAD_BREAK_SWITCH = "load_break_switch"
    DISCONNECTOR = "disconnector"
    TRANSFORMER = "transformer"  # MV/LV distribution transformer: one transformer area
    METER = "meter"  # meter / service point of one customer


#: Devices that interrupt a fault by themselves: where an outage starts.
PROTECTIVE_KINDS: frozenset[Kind] = frozenset(
    {Kind.BREAKER, Kind.RECLOSER, Kind.SECTIONALISER, Kind.FUSE}
)
#: Devices a crew or a protection scheme can open and close.
SWITCHING_KINDS: frozenset[Kind] = PROTECTIVE_KINDS | {Kind.LOAD_BREAK_SWITCH, Kind.DISCONNECTOR}
#: Elements with two terminals (a "from" and a "to" bus).
BRANCH_KINDS: frozenset[Kind] = SWITCHING_KINDS | {
    Kind.LINE,
    Kind.POWER_TRANSFORMER,
    Kind.TRANSFORMER,
}
#: Elements that hang on one bus.
POINT_KINDS: frozenset[Kind] = frozenset({Kind.SOURCE, Kind.METER})
#: Elements that carry the outage hierarchy: every meter's chain is made of these.
HIERARCHY_KINDS: frozenset[Kind] = SWITCHING_KINDS | {Kind.TRANSFORMER, Kind.SOURCE}

#: Order used for "main line before branches": lower is more upstream and more urgent.
MAIN_LINE_RANK: dict[Kind, int] = {
    Kind.SOURCE: 0,
    Kind.BREAKER: 1,
    Kind.RECLOSER: 2,
    Kind.SECTIONALISER: 3,
    Kind.LOAD_BREAK_SWITCH: 3,
    Kind.DISCONNECTOR: 3,
    Kind.FUSE: 4,
    Kind.TRANSFORMER: 5,
    Kind.METER: 6,
}

KIND_ALIASES: dict[str, Kind] = {
    "junction": Kind.BUSBAR,
    "bus": Kind.BUSBAR,
    "cable": Kind.LINE,
    "circuit_breaker": Kind.BREAKER,
    "cb": Kind.BREAKER,
    "sectionalizer": Kind.SECTIONALISER,
    "lbs": Kind.LOAD_BREAK_SWITCH,
    "switch": Kind.LOAD_BREAK_SWITCH,
    "ds": Kind.DISCONNECTOR,
    "distribution_transformer": Kind.TRANSFORMER,
    "service_point": Kind.METER,
    "substation": Kind.SOURCE,
}


def parse_kind(text: str) -> Kind:
    """Read an element kind from a file, accepting common synonyms; ValueError if unknown."""
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key in Kind._value2member_map_:
        return Kind(key)
    if key in KIND_ALIASES:
        return KIND_ALIASES[key]
    raise ValueError(f"unknown element kind {text!r}")


class CustomerClass(StrEnum):
    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"
    INDUSTRIAL = "industrial"
    AGRICULTURAL = "agricultural"
    HOSPITAL = "hospital"
    WATER_WORKS = "water_works"
    EMERGENCY_COMMAND = "emergency_command"
    TELECOM = "telecom"
    LIFE_SUPPORT = "life_support"


#: Customers whose loss of supply endangers life or a whole community: restored first.
CRITICAL_CLASSES: frozenset[CustomerClass] = frozenset(
    {
        CustomerClass.HOSPITAL,
        CustomerClass.WATER_WORKS,
        CustomerClass.EMERGENCY_COMMAND,
        CustomerClass.TELECOM,
        CustomerClass.LIFE_SUPPORT,
    }
)

CUSTOMER_CLASS_CODES: tuple[CustomerClass, ...] = tuple(CustomerClass)
KIND_CODES: tuple[Kind, ...] = tuple(Kind)


class ServiceClass(StrEnum):
    """Service class of a transformer area; sets the crew arrival promise."""

    URBAN = "urban"
    RURAL = "rural"
    REMOTE = "remote"


#: Arrival promise in minutes (95598 practice).
ARRIVAL_PROMISE_MINUTES: dict[ServiceClass, int] = {
    ServiceClass.URBAN: 45,
    ServiceClass.RURAL: 90,
    ServiceClass.REMOTE: 120,
}
