"""The incremental engine's bookkeeping always equals a recount from scratch.

After every storm replay (and midway through one) the counters, predictions, fault roots
and fault memberships must be exactly what a full recomputation from the reports still
counted as out would give: incremental shortcuts must never drift.
"""

from __future__ import annotations

from collections import Counter

import pytest

from gridmend.dispatch.inference import OutageEngine
from gridmend.dispatch.storm_simulator import StormSettings, simulate_storm
from gridmend.topology.network import Topology
from gridmend.topology.synthetic import generate_grid


@pytest.fixture(scope="module")
def topology() -> Topology:
    return Topology(generate_grid(6000, seed=5))


def assert_consistent(engine: OutageEngine) -> None:
    n_out, n_strong, n_gasp, n_area, sub = Counter(), Counter(), Counter(), Counter(), Counter()
    for key, state in engine._out.items():
        leaf = state.leaf
        if key >= 0:
            n_out[leaf] += 1
            n_strong[leaf] += state.strong
            n_gasp[leaf] += state.gasped
        else:
            n_area[leaf] += state.strong
        if state.strong:
            for c in engine.chain(leaf):
                sub[c] += 1
    for name, expected in (
        ("_n_out", n_out),
        ("_n_strong", n_strong),
        ("_n_gasp", n_gasp),
        ("_n_area", n_area),
        ("_sub_out", sub),
    ):
        actual = {k: v for k, v in getattr(engine, name).items() if v}
        assert actual == {k: v for k, v in expected.items() if v}, name
    # Fault roots: predicted, with no predicted device above them — and all such devices.
    roots = {c for c in engine._pred if all(a not in engine._pred for a in engine.chain(c)[1:])}
    assert set(engine._root_fault) == roots
    for c, fault in engine._root_fault.items():
        assert fault.device == c and fault.status == "open"
    # Every out meter is in the fault above it, or a stray when no fault is above it.
    for key, state in engine._out.items():
        top = engine._top_predicted(state.leaf)
        if top >= 0:
            assert key in engine._root_fault[top].meters
        else:
            assert key in engine._stray_below.get(state.leaf, set())
    members = Counter(k for f in engine._root_fault.values() for k in f.meters)
    assert all(n == 1 for n in members.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bookkeeping_matches_a_recount_through_a_whole_storm(topology, seed):
    storm = simulate_storm(topology, seed, StormSettings(n_faults=10))
    engine = OutageEngine(topology)
    reports = sorted(storm.reports, key=lambda r: r.time)
    half = len(reports) // 2
    engine.ingest_many(reports[:half])
    assert_consistent(engine)
    engine.ingest_many(reports[half:])
    assert_consistent(engine)
    engine.flush()
    assert_consistent(engine)
