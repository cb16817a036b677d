"""A flood takes transformers out one by one as the water rises; a blown fuse or breaker
darkens everything behind it at one instant. The engine must tell the two apart instead
of blaming the device above every time most of its transformer areas are dark.

Grid (see ``inference_support``): breaker B ─┬─ fuse F1 ─ T1, T2, T3 (10 meters each)
                                             └─ fuse F2 ─ T4 (10 meters)
"""

from __future__ import annotations

import pytest

from gridmend.dispatch.inference import OutageEngine
from gridmend.dispatch.rules import InferenceSettings, RollUpRule, default_rules
from gridmend.topology.elements import Kind

from .inference_support import call, gasp, small_topology


@pytest.fixture(scope="module")
def topology():
    return small_topology()


def faulted_devices(engine: OutageEngine) -> list[str]:
    ids = engine.topology.grid.element_ids
    return sorted(ids[f.device] for f in engine.active_faults())


def gasps_of_area(area: int, minutes: float, meters: int = 4) -> list:
    """Last gasps from ``meters`` households of transformer area ``area``."""
    return [
        gasp(f"g{area}-{k}-{minutes}", f"m{area}-{k}", minutes + 0.5 + 0.05 * k)
        for k in range(meters)
    ]


def test_transformers_flooded_hours_apart_are_separate_faults_not_their_fuse(topology):
    engine = OutageEngine(topology)
    # The water reaches T1's station first, T2's ninety minutes later, T3's after that.
    reports = gasps_of_area(1, 0) + gasps_of_area(2, 90) + gasps_of_area(3, 200)
    engine.ingest_many(reports)
    engine.flush()

    assert faulted_devices(engine) == ["T1", "T2", "T3"]


def test_a_blown_fuse_still_darkens_its_transformers_together(topology):
    engine = OutageEngine(topology)
    reports = gasps_of_area(1, 10) + gasps_of_area(2, 10) + gasps_of_area(3, 10)
    engine.ingest_many(reports)
    engine.flush()

    assert faulted_devices(engine) == ["F1"]


def test_an_older_flooded_transformer_does_not_hide_a_later_fuse_fault(topology):
    engine = OutageEngine(topology)
    # T1 went under early; later the fuse blew and T2 and T3 went dark together.
    reports = gasps_of_area(1, 0) + gasps_of_area(2, 120) + gasps_of_area(3, 120)
    engine.ingest_many(reports)
    engine.flush()

    assert faulted_devices(engine) == ["F1"]


def test_a_breaker_is_not_blamed_while_an_area_behind_a_calling_fuse_stays_silent(topology):
    # A breaker rule that rolls up from two parts, so the grid's two fuses can lift it.
    rules = default_rules() | {Kind.BREAKER: RollUpRule(3, 0.1, 2, 0.3)}
    engine = OutageEngine(topology, InferenceSettings(rules=rules))
    # Six households call from each of T1, T2 and T4 (no meter network); T3, behind the
    # same fuse as T1 and T2, stays silent: the water missed it, so B cannot be out.
    reports = [
        call(f"c{area}-{k}", f"m{area}-{k}", minutes=5 + k) for area in (1, 2, 4) for k in range(6)
    ]
    engine.ingest_many(reports)
    engine.flush()

    assert faulted_devices(engine) == ["T1", "T2", "T4"]
