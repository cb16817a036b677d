"""Grid files in and out: GeoJSON round trips, pandapower files, and broken files refused."""

from __future__ import annotations

import json

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from typer.testing import CliRunner

from gridmend.api.cli import app
from gridmend.topology import GridValidationError, Kind, Topology
from gridmend.topology.geojson_format import grid_to_geojson, write_geojson_grid
from gridmend.topology.loading import load_grid
from gridmend.topology.pandapower_import import grid_from_pandapower
from gridmend.topology.synthetic import generate_grid


def _feature(fid, kind, geometry=None, **props):
    return {
        "type": "Feature",
        "id": fid,
        "geometry": geometry,
        "properties": {"kind": kind, **props},
    }


def _point(lon, lat):
    return {"type": "Point", "coordinates": [lon, lat]}


def small_grid_document():
    """Substation → breaker → line → fuse → transformer → two customers."""
    return {
        "type": "FeatureCollection",
        "features": [
            _feature("b0", "busbar", _point(7.90, 48.45)),
            _feature("b1", "busbar", _point(7.90, 48.45)),
            _feature("b2", "busbar", _point(7.91, 48.45)),
            _feature("b3", "busbar", _point(7.91, 48.45)),
            _feature("b4", "busbar", _point(7.91, 48.451)),
            _feature("b5", "busbar", _point(7.912, 48.451)),
            _feature("sub", "source", _point(7.90, 48.45), bus="b0"),
            _feature("cb", "breaker", None, **{"from": "b0", "to": "b1"}),
            _feature("l1", "line", None, **{"from": "b1", "to": "b2"}),
            _feature("fu", "fuse", None, **{"from": "b2", "to": "b3"}),
            _feature(
                "t1", "transformer", None, service_class="rural", **{"from": "b3", "to": "b4"}
            ),
            _feature("lv", "line", None, **{"from": "b4", "to": "b5"}),
            _feature("m1", "meter", _point(7.9121, 48.4511), bus="b5"),
            _feature(
                "m2", "meter", _point(7.9101, 48.4511), parent="t1", customer_class="hospital"
            ),
        ],
    }


def test_a_small_geojson_grid_traces_meter_to_substation():
    from gridmend.topology.geojson_format import grid_from_geojson

    topology = Topology(grid_from_geojson(small_grid_document()))
    trace = topology.trace("m1")
    assert trace.transformer == "t1"
    assert trace.feeder == "cb"
    assert trace.source == "sub"
    assert trace.devices == ["fu", "cb"]
    # A meter exported with only its transformer as parent hangs on the LV side.
    assert topology.trace("m2").transformer == "t1"
    assert topology.is_critical(topology.meter_index("m2"))
    assert topology.customers_below(topology.element_index("fu")) == 2


def test_broken_grid_file_lists_every_problem_by_element_id():
    from gridmend.topology.geojson_format import grid_from_geojson

    document = small_grid_document()
    document["features"] += [
        _feature("l1", "line", None, **{"from": "b1", "to": "b2"}),  # duplicate id
        _feature("l9", "line", None, **{"from": "b1", "to": "nowhere"}),  # unknown reference
        _feature("x1", "flux_capacitor", None),  # unknown device kind
        _feature("b9", "busbar", None),  # missing coordinates
    ]
    with pytest.raises(GridValidationError) as caught:
        grid_from_geojson(document)
    problems = "\n".join(caught.value.problems)
    assert "l1: duplicate id" in problems
    assert "l9: unknown reference to='nowhere'" in problems
    assert "x1: unknown element kind 'flux_capacitor'" in problems
    assert "b9: missing or invalid coordinates" in problems


def test_a_loop_and_an_orphan_meter_are_named_when_tracing():
    from gridmend.topology.geojson_format import grid_from_geojson

    document = small_grid_document()
    document["features"] += [
        _feature("loop", "line", None, **{"from": "b1", "to": "b4"}),
        _feature("island", "busbar", _point(7.95, 48.46)),
        _feature("m9", "meter", _point(7.95, 48.46), bus="island"),
    ]
    grid = grid_from_geojson(document)
    with pytest.raises(GridValidationError) as caught:
        Topology(grid)
    problems = "\n".join(caught.value.problems)
    assert "m9: meter has no path to a source" in problems
    assert "closes a loop in the radially operated network" in problems
    assert "loop" in problems and "t1" in problems


def test_a_file_that_is_not_json_names_the_line(tmp_path):
    broken = tmp_path / "grid.geojson"
    broken.write_text('{"type": "FeatureCollection",\n "features": [oops]}')
    with pytest.raises(GridValidationError, match="line 2"):
        load_grid(broken)


def test_the_real_grid_survives_a_geojson_round_trip(oberrhein_grid, tmp_path):
    path = tmp_path / "oberrhein.geojson"
    write_geojson_grid(oberrhein_grid, path)
    again = load_grid(path)
    assert again.element_ids == oberrhein_grid.element_ids
    assert np.array_equal(again.kind, oberrhein_grid.kind)
    assert np.array_equal(again.normally_open, oberrhein_grid.normally_open)
    a, b = Topology(oberrhein_grid), Topology(again)
    for meter_id in ("schutterwald/load/17", "oberrhein/trafo/5/lv/meter3"):
        assert a.trace(meter_id) == b.trace(meter_id)


def test_a_pandapower_json_file_imports_like_the_net_object(tmp_path):
    net = pn.mv_oberrhein(include_substations=True)
    path = tmp_path / "mv_oberrhein.json"
    pp.to_json(net, str(path))
    from_file = load_grid(path)
    from_object = grid_from_pandapower(net)
    assert from_file.element_ids == from_object.element_ids
    trace = Topology(from_file).trace("load/0")
    assert trace.transformer == "trafo/108"
    assert trace.source.startswith("ext_grid/")
    assert trace.devices == ["switch/99"]


def test_mv_only_pandapower_stations_become_transformer_areas():
    net = pn.mv_oberrhein(include_substations=False)
    grid = grid_from_pandapower(net)
    stations = [i for i in grid.element_ids if i.startswith("trafo@load/")]
    mv_loads = net.load[net.load.type != "MV/LV Station"] if "type" in net.load else []
    assert len(stations) + len(mv_loads) == len(net.load)
    assert Topology(grid).trace("load/0").transformer.startswith("trafo")


def test_lv_boards_get_a_fuse_on_every_outgoing_cable():
    net = pn.lv_schutterwald()
    net.switch.loc[305, "closed"] = False  # the fixture's radial open point
    grid = grid_from_pandapower(net)
    topology = Topology(grid)
    derived = [i for i in grid.element_ids if i.startswith("fuse@line/")]
    assert derived
    for fuse_id in derived[:10]:
        fuse = topology.element_index(fuse_id)
        assert topology.kind(topology.node_parent(fuse)) in (Kind.TRANSFORMER, Kind.FUSE)


def test_generated_grids_have_realistic_transformer_areas_and_repeat_for_a_seed():
    grid = generate_grid(5000, seed=3)
    again = generate_grid(5000, seed=3)
    assert grid.element_ids == again.element_ids
    assert np.allclose(grid.lon, again.lon, equal_nan=True)
    topology = Topology(grid)
    assert len(topology.meters) == 5000
    sizes = [topology.customers_below(int(t)) for t in topology.transformers()]
    assert min(sizes) >= 1 and max(sizes) <= 300
    assert np.median(sizes) >= 5
    assert len(topology.feeders()) >= 2
    kinds = {topology.kind(int(d)) for d in topology.meter_devices(int(topology.meters[-1]))}
    assert Kind.BREAKER in kinds and Kind.FUSE in kinds


def test_cli_summary_and_trace_speak_json():
    runner = CliRunner()
    result = runner.invoke(app, ["grid", "summary", "oberrhein", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["meters"] > 10_000 and summary["feeders"] == 4
    result = runner.invoke(app, ["grid", "trace", "oberrhein", "schutterwald/load/17", "--json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    assert set(trace) == {"meter", "transformer", "feeder", "source", "devices"}


def test_cli_names_an_unknown_meter_and_a_missing_file():
    runner = CliRunner()
    result = runner.invoke(app, ["grid", "trace", "oberrhein", "no-such-meter"])
    assert result.exit_code != 0
    assert "unknown element 'no-such-meter'" in result.output
    result = runner.invoke(app, ["grid", "summary", "/nonexistent/grid.geojson"])
    assert result.exit_code != 0
    assert "no such file" in result.output


def test_geojson_export_is_a_feature_collection_with_lon_lat_points(oberrhein_grid):
    document = grid_to_geojson(oberrhein_grid)
    assert document["type"] == "FeatureCollection"
    meter = next(f for f in document["features"] if f["properties"]["kind"] == "meter")
    lon, lat = meter["geometry"]["coordinates"]
    assert 7.5 < lon < 8.3 and 48.2 < lat < 48.7
