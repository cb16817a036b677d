"""Replay scenarios: a flood over Enshi decides which devices fail, customers report as the
field figures say, and the generated crew roster reads back through the crew CSV reader."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridmend.dispatch.crews import parse_crews_csv
from gridmend.dispatch.reports import Channel
from gridmend.dispatch.scenarios import (
    ENSHI_CENTRE,
    crews_csv_text,
    enshi_scenario,
    generate_crews,
    named_scenario,
)


@pytest.fixture(scope="module")
def small_enshi():
    """The Enshi flood on a smaller synthetic grid over the same place (fast)."""
    return enshi_scenario(seed=1, crews=12, n_meters=30_000, width_deg=0.03)


def test_the_flood_fails_devices_inside_the_water_over_enshi(small_enshi):
    topology = small_enshi.topology
    grid = topology.grid
    assert abs(float(np.nanmean(grid.lon)) - ENSHI_CENTRE[0]) < 0.05
    assert abs(float(np.nanmean(grid.lat)) - ENSHI_CENTRE[1]) < 0.05
    assert small_enshi.truth_faults
    flooded = small_enshi.footprint.buffer(0.01)  # a failed cable's fuse may sit just outside
    for fault in small_enshi.truth_faults:
        lon, lat = grid.location(fault.device)
        assert flooded.contains(shapely.Point(lon, lat)), fault


def test_customers_report_as_the_field_figures_say(small_enshi):
    truth = small_enshi.truth
    assert 0.08 <= truth["call_rate"] <= 0.12
    start = {f.device: f.start for f in small_enshi.truth_faults}
    topology = small_enshi.topology
    gasps = [r for r in small_enshi.reports if r.channel == Channel.AMI_LAST_GASP]
    assert gasps
    for report in gasps[:200]:
        meter = small_enshi.report_meters[report.report_id]
        loss = min(
            t
            for device, t in start.items()
            if topology.is_below(topology.meter_node[meter], device)
        )
        assert 30.0 <= report.time - loss <= 45.0
    # Half the meter networks are down in a flood this size: many dark meters stay silent.
    dark = {int(m) for f in small_enshi.truth_faults for m in topology.meters_below(f.device)}
    assert len(gasps) < 0.5 * len(dark)


def test_a_generated_roster_reads_back_through_the_crew_csv_reader():
    crews = generate_crews(5, [(109.4, 30.2), (109.5, 30.3)], seed=3, shift=(22 * 60, 14 * 60))
    again = parse_crews_csv(crews_csv_text(crews))
    assert [(c.crew_id, c.staff_number, c.skills, c.depot) for c in again] == [
        (c.crew_id, c.staff_number, c.skills, pytest.approx(c.depot)) for c in crews
    ]
    assert again[0].shift.contains(23 * 3600.0) and not again[0].shift.contains(15 * 3600.0)


def test_an_unknown_scenario_is_named():
    with pytest.raises(ValueError, match=r"unknown scenario 'tornado'"):
        named_scenario("tornado")
