"""Storm replay on the real Oberrhein grid: crews restore every fault, the true grid decides
who is out, and the dispatch strategy changes who gets power back first."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gridmend.dispatch.crews import Crew, ShiftWindow, Skill
from gridmend.dispatch.kpis import compute_kpis, customer_minutes
from gridmend.dispatch.replay import ReplaySettings, TruthFault, replay_storm, strategy_settings
from gridmend.dispatch.scenarios import generated_storm_scenario
from gridmend.dispatch.storm_simulator import StormSettings, simulate_reports
from gridmend.geo.routing import ApproximateRouter
from gridmend.topology import Kind

START = datetime(2026, 7, 20, 6, 0, tzinfo=UTC)
T0 = START.timestamp()
QUIET = StormSettings(
    start=START,
    fault_window_s=1800.0,
    ami_share=1.0,
    ami_network_loss=0.0,
    customer_side_faults=0,
    noise_reports=0,
    outside_area_reports=0,
    malformed_rows=0,
    duplicate_share=0.0,
)


def run(scenario, strategy: str = "priority", seed: int = 1):
    return replay_storm(
        scenario.topology,
        scenario.router,
        scenario.crews,
        scenario.reports,
        truth_faults=scenario.truth_faults,
        report_meters=scenario.report_meters,
        truth=scenario.truth,
        strategy=strategy,
        seed=seed,
        settings=scenario.settings,
    )


@pytest.fixture(scope="module")
def thunderstorm(oberrhein_grid):
    from gridmend.topology import Topology

    return generated_storm_scenario(Topology(oberrhein_grid), seed=2, crews=4, n_faults=8)


@pytest.fixture(scope="module")
def replayed(thunderstorm):
    return run(thunderstorm)


def test_the_same_seed_replays_the_same_storm(thunderstorm, replayed):
    again = run(thunderstorm)
    assert again.events == replayed.events
    assert np.array_equal(again.timeline_t, replayed.timeline_t)
    assert np.array_equal(again.timeline_out, replayed.timeline_out)
    assert [(o.work_order_id, o.crew_id, o.restored) for o in again.orders] == [
        (o.work_order_id, o.crew_id, o.restored) for o in replayed.orders
    ]


def test_every_true_fault_is_restored_and_nobody_is_left_in_the_dark(thunderstorm, replayed):
    assert len(replayed.faults) == len(thunderstorm.truth_faults)
    assert all(f.restored_at is not None and f.restored_at > f.start for f in replayed.faults)
    assert any(f.restored_by not in (None, "self") for f in replayed.faults)  # crews did it
    assert replayed.still_out == 0
    assert replayed.timeline_out[-1] == 0
    assert replayed.timeline_out.max() > 0


def test_saidi_is_customer_minutes_over_customers_served(replayed):
    kpis = compute_kpis(replayed)
    ieee = kpis["ieee1366"]
    cmi = customer_minutes(replayed)
    assert cmi > 0
    assert ieee["saidi_minutes"] == pytest.approx(cmi / replayed.customers_served, abs=1e-3)
    assert ieee["saifi"] == pytest.approx(
        replayed.interruptions / replayed.customers_served, abs=1e-5
    )
    assert ieee["caidi_minutes"] == pytest.approx(ieee["saidi_minutes"] / ieee["saifi"], rel=1e-3)
    # Every interruption ended, and their durations add up to the same customer-minutes.
    assert len(replayed.durations_s) == replayed.interruptions
    assert replayed.durations_s.sum() / 60.0 == pytest.approx(cmi, rel=1e-6)


def _scenario(topology, failures, crews, seed=3):
    storm = simulate_reports(topology, failures, seed, QUIET)
    truth = [
        TruthFault(f"T{k + 1}", device, time, None, "test")
        for k, (device, time) in enumerate(failures)
    ]
    return storm, truth


def test_a_nested_fuse_stays_dark_after_the_feeder_is_repaired_until_its_own_crew_comes(
    oberrhein,
):
    breaker = oberrhein.element_index("oberrhein/switch/99")
    fuses = oberrhein.nodes_below(breaker, frozenset({Kind.FUSE}))
    fuse = next(int(f) for f in fuses if oberrhein.customers_below(int(f)) >= 10)
    depot = oberrhein.grid.location(breaker)
    crews = [Crew(f"C{i}", f"10{i}", frozenset({Skill.MV, Skill.LV}), depot) for i in (1, 2)]
    storm, truth = _scenario(oberrhein, [(breaker, T0), (fuse, T0 + 600)], crews)
    result = replay_storm(
        oberrhein,
        ApproximateRouter(),
        crews,
        storm.reports,
        truth_faults=truth,
        report_meters=storm.meters,
        truth=storm.truth,
        seed=3,
    )
    feeder, nested = result.faults
    assert feeder.restored_by != nested.restored_by  # a second crew visit
    assert nested.restored_at > feeder.restored_at
    # Between the two repairs exactly the fuse's customers are still dark.
    between = (feeder.restored_at + nested.restored_at) / 2
    assert result.customers_out_at(between) == oberrhein.customers_below(fuse)
    assert result.still_out == 0


def test_priority_restores_the_hospitals_fault_before_a_larger_residential_one(oberrhein):
    hospital_meter = next(
        int(m) for m in oberrhein.meters if oberrhein.grid.class_of(int(m)).value == "hospital"
    )
    hospital = oberrhein.transformer_of(hospital_meter)
    residential = next(
        int(t)
        for t in oberrhein.transformers()
        if oberrhein.customers_below(int(t)) > 2 * oberrhein.customers_below(hospital)
        and len(oberrhein.critical_below(int(t))) == 0
    )
    # The crew comes on shift an hour after both faults, starting next to the residential one.
    shift = ShiftWindow(T0 + 3600.0, T0 + 30 * 86_400.0)
    depot = oberrhein.grid.location(residential)
    crews = [Crew("C1", "1001", frozenset({Skill.MV, Skill.LV}), depot, shift)]
    storm, truth = _scenario(oberrhein, [(residential, T0), (hospital, T0 + 120)], crews)
    result = replay_storm(
        oberrhein,
        ApproximateRouter(),
        crews,
        storm.reports,
        truth_faults=truth,
        report_meters=storm.meters,
        truth=storm.truth,
        strategy="priority",
        seed=3,
    )
    restored = {f.device: f.restored_at for f in result.faults}
    assert result.still_out == 0
    # The residential fault came first and sits at the crew's door; the hospital still wins.
    assert restored[hospital] < restored[residential]


def test_an_unknown_strategy_is_named():
    with pytest.raises(ValueError, match=r"'fastest'.*nearest, priority, mainline-first"):
        strategy_settings("fastest")


def test_repair_times_grow_with_storm_severity():
    settings = ReplaySettings()
    calm = [
        settings.repair.draw(Kind.TRANSFORMER, 1.0, np.random.default_rng(k)) for k in range(50)
    ]
    severe = [
        settings.repair.draw(Kind.TRANSFORMER, 2.0, np.random.default_rng(k)) for k in range(50)
    ]
    assert np.median(calm) == pytest.approx(3 * 3600, rel=0.3)
    assert np.allclose(np.array(severe) / np.array(calm), 2.0)


def test_a_call_log_without_truth_restores_the_outages_the_engine_found(thunderstorm):
    result = replay_storm(
        thunderstorm.topology,
        thunderstorm.router,
        thunderstorm.crews,
        thunderstorm.reports,
        seed=1,
    )
    assert result.faults and all(f.truth_id.startswith("L") for f in result.faults)
    assert all(f.restored_at is not None for f in result.faults)
    assert result.still_out == 0
    # Backdated outages never count a customer twice.
    assert result.timeline_out.max() <= result.customers_served
    assert compute_kpis(result)["inference"] is None  # nothing to score against
