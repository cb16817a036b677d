"""US-style lateral: pole-top transformers serving one to three homes each.

substation S ─ breaker B ─ fuse F ─┬─ P1 (1 home)
                                   ├─ P2 (3 homes)
                                   ├─ P3 (3 homes)
                                   └─ P4 (3 homes)
"""

from __future__ import annotations

import pytest

from gridmend.dispatch.answers import AnswerKind
from gridmend.dispatch.inference import FaultStatus, OutageEngine
from gridmend.topology.elements import Kind
from gridmend.topology.grid import GridBuilder
from gridmend.topology.network import Topology
from tests.dispatch.inference_support import (
    DEG_PER_M_LAT,
    DEG_PER_M_LON,
    LAT0,
    LON0,
    T0,
    call,
    gasp,
)

HOMES = {"P1": 1, "P2": 3, "P3": 3, "P4": 3}


@pytest.fixture(scope="module")
def topology() -> Topology:
    b = GridBuilder("pole-top")
    b.add_bus("sub", LON0, LAT0)
    b.add_source("S", "sub")
    b.add_bus("f0", LON0 + 0.001, LAT0)
    b.add_branch("B", Kind.BREAKER, "sub", "f0")
    b.add_bus("lateral", LON0 + 0.002, LAT0)
    b.add_branch("F", Kind.FUSE, "f0", "lateral")
    for i, (pole, homes) in enumerate(HOMES.items()):
        lon = LON0 + 0.002 + (i + 1) * 60 * DEG_PER_M_LON
        b.add_bus(f"{pole}-mv", lon, LAT0)
        b.add_branch(f"{pole}-line", Kind.LINE, "lateral", f"{pole}-mv")
        b.add_bus(f"{pole}-lv", lon, LAT0 + 5 * DEG_PER_M_LAT)
        b.add_branch(pole, Kind.TRANSFORMER, f"{pole}-mv", f"{pole}-lv")
        for k in range(homes):
            b.add_bus(f"{pole}-h{k}", lon + k * 15 * DEG_PER_M_LON, LAT0 + 20 * DEG_PER_M_LAT)
            b.add_branch(f"{pole}-svc{k}", Kind.LINE, f"{pole}-lv", f"{pole}-h{k}")
            b.add_meter(f"{pole}-m{k}", f"{pole}-h{k}")
    return Topology(b.build())


def test_a_lone_caller_on_a_one_home_transformer_with_a_quiet_street_is_customer_side(topology):
    engine = OutageEngine(topology)
    first = engine.ingest(call("r1", "P1-m0", scope=None))
    assert first.kind == AnswerKind.NEW_FAULT  # a crew is not ruled out at once
    engine.advance(T0 + 45 * 60)  # nobody on the lateral's other poles spoke up
    assert engine.active_faults() == []
    assert engine.faults[first.fault_id].status == FaultStatus.CUSTOMER_SIDE
    [update] = engine.updates
    assert update.kind == AnswerKind.CUSTOMER_SIDE and update.guidance


def test_two_homes_out_on_a_small_pole_top_stay_a_transformer_fault(topology):
    engine = OutageEngine(topology)
    engine.ingest(call("r1", "P2-m0", scope=None))
    engine.ingest(call("r2", "P2-m2", 12, scope=None))
    engine.advance(T0 + 90 * 60)
    [fault] = engine.active_faults()
    assert topology.grid.element_ids[fault.device] == "P2"


def test_last_gasps_from_two_poles_at_one_instant_blame_the_lateral_fuse(topology):
    # P2 and P3 lose supply together; their meters gasp one after another within seconds.
    engine = OutageEngine(topology)
    engine.ingest(gasp("g1", "P2-m0", 0.5))
    engine.ingest(gasp("g2", "P3-m0", 0.55))
    engine.ingest(gasp("g3", "P3-m2", 0.6))  # the third report reaches the fuse's minimum
    [fault] = engine.active_faults()
    assert topology.grid.element_ids[fault.device] == "F"
