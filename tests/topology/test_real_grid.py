"""The bundled Oberrhein + Schutterwald grid traced the way a dispatcher needs it."""

from __future__ import annotations

import random

import numpy as np
import pandapower.networks as pn
import pytest

from gridmend.topology import PROTECTIVE_KINDS, Grid, Kind, SwitchingRefused, Topology
from gridmend.topology.summary import summarise
from tests.topology.reference import device_path, energised_meter_ids


@pytest.fixture(scope="module")
def pandapower_sources():
    return pn.mv_oberrhein(include_substations=True), pn.lv_schutterwald()


def test_element_counts_match_the_pandapower_sources(oberrhein, pandapower_sources):
    mv, lv = pandapower_sources
    grid = oberrhein.grid
    summary = summarise(oberrhein)
    assert summary["sources"] == len(mv.ext_grid)
    assert summary["power_transformers"] == int((mv.trafo.vn_lv_kv >= 1).sum())
    # Every Oberrhein MV/LV station, plus the two Schutterwald stations the MV model lacks.
    assert summary["transformers"] == int((mv.trafo.vn_lv_kv < 1).sum()) + 2
    assert summary["feeders"] == int((mv.switch.type == "CB").sum())
    schutterwald_meters = [i for i in grid.element_ids if i.startswith("schutterwald/load/")]
    assert len(schutterwald_meters) == len(lv.load) == 1506
    mv_lines = [i for i in grid.element_ids if i.startswith("oberrhein/line/")]
    lv_lines = [i for i in grid.element_ids if i.startswith("schutterwald/line/")]
    assert len(mv_lines) == len(mv.line)
    assert len(lv_lines) == len(lv.line)
    mv_switches = [i for i in grid.element_ids if i.startswith("oberrhein/switch/")]
    assert len(mv_switches) == len(mv.switch)
    assert summary["meters_without_supply"] == 0


def test_every_customer_is_counted_once_under_the_feeders(oberrhein):
    below = sum(oberrhein.customers_below(f) for f in oberrhein.feeders())
    assert below == len(oberrhein.meters)


def test_a_schutterwald_household_traces_to_its_station_and_mv_feeder(
    oberrhein, pandapower_sources
):
    mv, lv = pandapower_sources
    # Household load 17 sits in the LV network of Schutterwald station T_idx_35, which the
    # fixture hangs under the Oberrhein station at the same spot (trafo 135).
    zone = lv.bus.zone[lv.load.bus[17]]
    assert zone == "T_idx_35"
    trace = oberrhein.trace("schutterwald/load/17")
    assert trace.transformer == "oberrhein/trafo/135"
    station_hv_bus = int(mv.trafo.hv_bus[135])
    assert trace.source == "oberrhein/ext_grid/0"
    assert trace.feeder == "oberrhein/switch/270"
    assert trace.devices[-1] == "oberrhein/switch/270"  # the feeder breaker is furthest
    assert trace.devices[0].startswith("schutterwald/")  # an LV cabinet fuse is nearest
    meter = oberrhein.meter_index("schutterwald/load/17")
    assert oberrhein.is_below(oberrhein.meter_node[meter], oberrhein.element_index(trace.feeder))
    assert station_hv_bus in mv.bus.index


def test_device_chains_agree_with_a_networkx_path_search(oberrhein):
    grid = oberrhein.grid
    rng = random.Random(7)
    for meter in rng.sample(oberrhein.meters.tolist(), 25):
        expected = device_path(grid, oberrhein.closed, meter, PROTECTIVE_KINDS)
        got = [grid.element_ids[d] for d in oberrhein.meter_devices(meter)]
        assert got == expected, grid.element_ids[meter]


def test_opening_a_feeder_breaker_darkens_exactly_the_customers_below_it(oberrhein):
    grid = oberrhein.grid
    breaker = oberrhein.element_index("oberrhein/switch/99")
    below = set(oberrhein.meters_below(breaker).tolist())
    result = oberrhein.switch("oberrhein/switch/99", close=False)
    assert set(result.deenergised.tolist()) == below
    assert not result.retraced
    live = {grid.element_ids[m] for m in np.flatnonzero(oberrhein.energised_meters())}
    assert live == energised_meter_ids(grid, oberrhein.closed)
    # Closing it again restores exactly the same customers.
    back = oberrhein.switch("oberrhein/switch/99", close=True)
    assert set(back.energised.tolist()) == below


def test_closing_a_tie_feeds_the_dark_feeder_from_its_neighbour(oberrhein):
    grid = oberrhein.grid
    oberrhein.switch("oberrhein/switch/99", close=False)
    dark_before = {grid.element_ids[m] for m in np.flatnonzero(~oberrhein.energised_meters())}
    dark_before &= {grid.element_ids[m] for m in oberrhein.meters}
    # switch/48 is a normally open point between feeder 99 and a neighbour.
    result = oberrhein.switch("oberrhein/switch/48", close=True)
    assert result.retraced
    live = {grid.element_ids[m] for m in np.flatnonzero(oberrhein.energised_meters())}
    assert live == energised_meter_ids(grid, oberrhein.closed)
    restored = {grid.element_ids[m] for m in result.energised}
    assert restored and restored <= dark_before
    # The transferred customers now trace through the tie to the neighbouring feeder.
    some = next(iter(restored))
    assert oberrhein.trace(some).feeder != "oberrhein/switch/99"


def test_closing_a_tie_between_two_live_feeders_is_refused(oberrhein):
    with pytest.raises(SwitchingRefused, match="parallel"):
        oberrhein.switch("oberrhein/switch/48", close=True)
    assert not oberrhein.closed[oberrhein.element_index("oberrhein/switch/48")]


def test_a_line_cannot_be_switched(oberrhein):
    with pytest.raises(SwitchingRefused, match="cannot be switched"):
        oberrhein.switch("oberrhein/line/3", close=False)


def test_nested_fuse_stays_open_when_the_feeder_recloses(oberrhein):
    meter = oberrhein.meter_index("schutterwald/load/17")
    fuse = oberrhein.meter_devices(meter)[0]
    fuse_id = oberrhein.grid.element_ids[fuse]
    oberrhein.switch(fuse_id, close=False)
    oberrhein.switch("oberrhein/switch/270", close=False)
    reclosed = oberrhein.switch("oberrhein/switch/270", close=True)
    assert meter not in set(reclosed.energised.tolist())
    assert not oberrhein.is_energised(meter)
    below_fuse = set(oberrhein.meters_below(fuse).tolist())
    assert below_fuse.isdisjoint(reclosed.energised.tolist())


def test_what_if_opening_devices_lists_the_customers_who_would_lose_supply(oberrhein):
    fuses = oberrhein.grid.indices_of(Kind.FUSE)[:3]
    expected = set()
    for f in fuses:
        expected |= set(oberrhein.meters_below(int(f)).tolist())
    assert set(oberrhein.deenergised_by(fuses).tolist()) == expected
    assert oberrhein.energised_meters()[oberrhein.meters].all()  # nothing actually switched


def test_lowest_common_device_of_neighbours_is_their_shared_fuse(oberrhein):
    meter = oberrhein.meter_index("schutterwald/load/17")
    fuse = oberrhein.meter_devices(meter)[0]
    neighbours = oberrhein.meters_below(fuse)
    assert oberrhein.lowest_common_device(neighbours) == fuse
    # Two customers on different feeders share no protective device.
    other_feeder = next(f for f in oberrhein.feeders() if not oberrhein.is_below(fuse, f))
    far = oberrhein.meters_below(int(other_feeder))[0]
    assert oberrhein.lowest_common_device([meter, far]) is None
    # Two customers of one transformer area share at least the feeder breaker.
    area = oberrhein.meters_below(oberrhein.transformer_of(meter))
    common = oberrhein.lowest_common_device(area)
    assert common is not None and oberrhein.kind(common) in PROTECTIVE_KINDS


def test_critical_customers_are_known_below_their_feeder(oberrhein: Topology):
    grid: Grid = oberrhein.grid
    total = sum(len(oberrhein.critical_below(f)) for f in oberrhein.feeders())
    critical = sum(1 for m in oberrhein.meters.tolist() if oberrhein.is_critical(m))
    assert total == critical > 0
    hospital = next(m for m in oberrhein.meters.tolist() if grid.class_of(m) == "hospital")
    feeder = oberrhein.feeder_of(hospital)
    assert hospital in set(oberrhein.critical_below(feeder).tolist())


def test_a_failed_line_section_is_cleared_by_the_device_feeding_it(oberrhein):
    grid = oberrhein.grid
    meter = oberrhein.meter_index("schutterwald/load/17")
    fuse = oberrhein.meter_devices(meter)[0]
    # The service cable at the customer's bus is cleared by the customer's nearest device.
    bus = int(grid.terminal_a[meter])
    cable = next(
        i
        for i in grid.indices_of(Kind.LINE).tolist()
        if bus in (int(grid.terminal_a[i]), int(grid.terminal_b[i]))
    )
    assert oberrhein.node_above(cable) == oberrhein.meter_node[meter]
    assert oberrhein.is_below(oberrhein.node_above(cable), fuse)
    # An MV line out on the feeder is cleared by a device at or above the feeder breaker.
    mv_line = oberrhein.element_index("oberrhein/line/62")
    head = oberrhein.node_above(mv_line)
    assert oberrhein.is_below(head, oberrhein.element_index("oberrhein/switch/99"))
    # A device clears itself.
    assert oberrhein.node_above(fuse) == fuse


def test_a_failed_transformer_darkens_its_area_until_it_is_repaired(oberrhein):
    transformer = oberrhein.element_index("oberrhein/trafo/135")
    area = set(oberrhein.meters_below(transformer).tolist())
    failed = oberrhein.set_in_service("oberrhein/trafo/135", False)
    assert set(failed.deenergised.tolist()) == area
    repaired = oberrhein.set_in_service("oberrhein/trafo/135", True)
    assert set(repaired.energised.tolist()) == area
    with pytest.raises(SwitchingRefused, match="only devices and transformers"):
        oberrhein.set_in_service("oberrhein/line/3", False)


def test_the_bundled_fixture_is_what_the_build_script_makes(oberrhein_grid):
    from gridmend.fixtures.build import build_oberrhein

    rebuilt = build_oberrhein()
    assert rebuilt.element_ids == oberrhein_grid.element_ids
    assert rebuilt.bus_ids == oberrhein_grid.bus_ids
    assert np.array_equal(rebuilt.kind, oberrhein_grid.kind)
    assert np.allclose(rebuilt.lon, oberrhein_grid.lon, atol=1e-6, equal_nan=True)
    assert np.array_equal(rebuilt.customer_class, oberrhein_grid.customer_class)
