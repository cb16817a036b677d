"""Storm footprints decide which protective devices operate on the real grid."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridmend.dispatch.storm_damage import customers_out, flood_damage, wind_damage
from gridmend.fixtures import HERE, HURDAT2
from gridmend.geo.hurricane import interpolate, read_hurdat2, transpose
from gridmend.topology import PROTECTIVE_KINDS, Kind


@pytest.fixture(scope="module")
def florence_over_offenburg():
    track = read_hurdat2(HERE / HURDAT2, "FLORENCE 2018")
    return transpose(interpolate(track), (7.90, 48.45), start_time=1_600_000_000.0)


def test_a_stronger_storm_breaks_everything_a_weaker_one_did(oberrhein, florence_over_offenburg):
    weak = wind_damage(oberrhein, florence_over_offenburg, np.random.default_rng(5), intensity=0.8)
    strong = wind_damage(oberrhein, florence_over_offenburg, np.random.default_rng(5))
    assert 0 < len(weak) < len(strong)
    assert {f.element for f in weak} <= {f.element for f in strong} | {
        f.element for f in weak if f.device in {g.device for g in strong}
    }
    assert customers_out(oberrhein, weak) <= customers_out(oberrhein, strong)


def test_the_same_seed_gives_the_same_storm(oberrhein, florence_over_offenburg):
    a = wind_damage(oberrhein, florence_over_offenburg, np.random.default_rng(9), intensity=0.8)
    b = wind_damage(oberrhein, florence_over_offenburg, np.random.default_rng(9), intensity=0.8)
    assert a == b


def test_downed_lines_are_cleared_by_protective_devices_not_switches(
    oberrhein, florence_over_offenburg
):
    failures = wind_damage(oberrhein, florence_over_offenburg, np.random.default_rng(1))
    for failure in failures:
        kind = oberrhein.kind(failure.device)
        if oberrhein.kind(failure.element) == Kind.LINE:
            assert kind in PROTECTIVE_KINDS, failure
        else:
            assert kind == Kind.TRANSFORMER
    # One fault per device, reported at its earliest failure.
    assert len({f.device for f in failures}) == len(failures)


def test_a_flood_takes_out_stations_inside_the_water_only(oberrhein):
    flood = shapely.buffer(shapely.Point(7.88, 48.46), 0.02)
    failures = flood_damage(
        oberrhein, flood, start=0.0, rise_s=6 * 3600, rng=np.random.default_rng(2)
    )
    assert failures
    for failure in failures:
        lon, lat = oberrhein.grid.location(failure.element)
        assert flood.contains(shapely.Point(lon, lat))
        assert 0.0 <= failure.time <= 6 * 3600
    transformers_hit = [f for f in failures if oberrhein.kind(f.device) == Kind.TRANSFORMER]
    assert transformers_hit
