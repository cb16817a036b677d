"""Storms with known truth on the real fixture and generated grids: the engine finds the
operated devices with far fewer work orders than reports, and beats map-only clustering."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gridmend.api.cli import app
from gridmend.dispatch.evaluation import dbscan_baseline, observable_device, run_engine, score
from gridmend.dispatch.resolution import Resolver
from gridmend.dispatch.storm_simulator import TRUTH_FORMAT, StormSettings, simulate_storm
from gridmend.fixtures import fixture_names
from gridmend.topology.loading import load_grid
from gridmend.topology.network import Topology
from gridmend.topology.synthetic import generate_grid

needs_fixture = pytest.mark.skipif(
    "oberrhein" not in fixture_names(), reason="oberrhein fixture not built"
)


@pytest.fixture(scope="module")
def oberrhein() -> Topology:
    return Topology(load_grid("oberrhein"))


@pytest.fixture(scope="module")
def generated() -> Topology:
    return Topology(generate_grid(8000, seed=3))


def _engine_vs_baseline(topology: Topology, seeds: range):
    resolver = Resolver(topology)
    totals = {"engine": [0, 0, 0, 0], "dbscan": [0, 0, 0, 0]}  # correct, orders, found, faults
    reports = 0
    for seed in seeds:
        storm = simulate_storm(topology, seed)
        n = len(storm.reports)
        reports += n
        engine = run_engine(topology, storm.reports, resolver)
        ids = [topology.grid.element_ids[f.device] for f in engine.active_faults()]
        detectable = sum(1 for f in storm.truth["faults"] if f["reports"])
        for name, devices in (
            ("engine", ids),
            ("dbscan", dbscan_baseline(topology, storm.reports, resolver)),
        ):
            s = score(devices, storm.truth, n, topology)
            t = totals[name]
            t[0] += s.true_positives
            t[1] += s.work_orders
            t[2] += detectable - s.missed
            t[3] += detectable
    return totals, reports


@needs_fixture
def test_on_the_real_fixture_the_engine_beats_map_only_clustering(oberrhein):
    totals, reports = _engine_vs_baseline(oberrhein, range(3))
    eng, base = totals["engine"], totals["dbscan"]
    precision, recall = eng[0] / eng[1], eng[2] / eng[3]
    assert precision > base[0] / base[1]
    assert recall > base[2] / base[3]
    assert precision >= 0.75 and recall >= 0.75
    assert reports >= 2 * eng[1]  # far fewer work orders than reports


def test_on_a_generated_grid_the_engine_beats_map_only_clustering(generated):
    totals, reports = _engine_vs_baseline(generated, range(3))
    eng, base = totals["engine"], totals["dbscan"]
    assert eng[0] / eng[1] > base[0] / base[1]
    assert eng[2] / eng[3] >= base[2] / base[3]
    assert reports >= 2 * eng[1]


def test_a_storm_writes_its_truth_beside_the_reports(generated, tmp_path):
    storm = simulate_storm(generated, 5, StormSettings(n_faults=6, customer_side_faults=4))
    reports_path, truth_path = storm.write(tmp_path, 5)
    truth = json.loads(truth_path.read_text())
    assert truth["format"] == TRUTH_FORMAT
    assert len(truth["faults"]) == 6
    ids = set(generated.grid.index)
    assert all(f["device_id"] in ids for f in truth["faults"])
    assert len(truth["customer_side"]) == 4
    causes = set(truth["report_cause"].values())
    assert {"customer_side", "noise", "invalid"} <= causes
    lines = reports_path.read_text().splitlines()
    assert lines[0] == "report_id,time,channel,meter_id,lon,lat,crs,scope,text"
    assert len(lines) > len(storm.reports)  # duplicates and malformed rows mixed in


def test_the_same_seed_gives_the_same_storm(generated):
    a = simulate_storm(generated, 11, StormSettings(n_faults=4))
    b = simulate_storm(generated, 11, StormSettings(n_faults=4))
    assert a.reports == b.reports and a.truth == b.truth


@needs_fixture
def test_a_cascade_of_fuses_with_the_same_customers_is_one_observable_device(oberrhein):
    grid = oberrhein.grid
    upper = grid.index.get("schutterwald/switch/340")
    if upper is None:
        pytest.skip("fixture without the Schutterwald cable cabinets")
    lower = grid.index["schutterwald/switch/259"]
    assert observable_device(oberrhein, lower) == observable_device(oberrhein, upper)


@needs_fixture
def test_gridmend_infer_writes_faults_and_answers_and_scores_against_truth(tmp_path):
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "storm",
            "simulate",
            "--grid",
            "oberrhein",
            "--out",
            str(tmp_path),
            "--seed",
            "2",
            "--faults",
            "6",
        ],
    )
    assert made.exit_code == 0, made.output
    out = tmp_path / "faults.json"
    result = runner.invoke(
        app,
        [
            "infer",
            "--grid",
            "oberrhein",
            "--reports",
            str(tmp_path / "reports.csv"),
            "--out",
            str(out),
            "--truth",
            str(tmp_path / "truth.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "recall" in result.output
    document = json.loads(out.read_text())
    fault = document["faults"][0]
    assert {"fault_id", "device_id", "confidence", "meters", "report_ids"} <= set(fault)
    answers = {a["report_id"]: a for a in document["answers"]}
    assert {"new_fault", "merged", "rejected"} <= {a["answer"] for a in answers.values()}
    rejected = [a for a in answers.values() if a["answer"] == "rejected"]
    assert any("line" in a["reason"] for a in rejected)  # malformed rows named by line


def test_gridmend_infer_names_a_missing_reports_file(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "infer",
            "--grid",
            "oberrhein",
            "--reports",
            str(tmp_path / "none.csv"),
            "--out",
            str(tmp_path / "f.json"),
        ],
    )
    assert result.exit_code != 0
    assert "none.csv" in result.output
