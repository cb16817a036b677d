"""``gridmend replay`` and ``gridmend sweep`` as a planner uses them: files in, report out,
and every bad input named."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from gridmend.api.cli import app
from gridmend.dispatch.scenarios import crews_csv_text, generate_crews, substation_depots
from gridmend.dispatch.storm_simulator import StormSettings, simulate_storm
from gridmend.topology import Topology

runner = CliRunner()


def said(result) -> str:
    """The command's output with the terminal's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def call_log(oberrhein_grid, tmp_path_factory):
    """A simulated thunderstorm's call log (with its malformed rows), truth and crews."""
    topology = Topology(oberrhein_grid)
    directory = tmp_path_factory.mktemp("storm")
    storm = simulate_storm(topology, 4, StormSettings(n_faults=4))
    reports, truth = storm.write(directory)
    crews = directory / "crews.csv"
    crews.write_text(
        crews_csv_text(generate_crews(3, substation_depots(topology, 2), 4)), encoding="utf-8"
    )
    return reports, truth, crews


def test_a_call_log_replays_into_kpis_timeline_and_report(call_log, tmp_path):
    reports, truth, crews = call_log
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "replay",
            "--grid", "oberrhein",
            "--reports", str(reports),
            "--truth", str(truth),
            "--crews", str(crews),
            "--strategy", "mainline-first",
            "--seed", "4",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "line" in said(result)  # the malformed rows were named and skipped
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["strategy"] == "mainline-first"
    assert kpis["ieee1366"]["saidi_minutes"] > 0
    assert kpis["true_faults"]["restored"] == kpis["true_faults"]["count"] > 0
    assert kpis["inference"]["recall"] > 0
    assert set(kpis["sla_compliance"]) == {"urban", "rural", "remote", "all"}
    rows = list(csv.reader((out / "timeline.csv").open()))
    assert rows[0][:3] == ["time", "hours", "customers_out_mainline-first"]
    assert int(rows[-1][2]) == 0 and max(int(r[2]) for r in rows[1:]) > 0
    page = (out / "report.html").read_text()
    assert "SAIDI" in page and page.count("data:image/png;base64") >= 3
    assert "L.map" in page and "crew tracks" in page
    assert "https://" not in page.split("srcdoc")[0]  # nothing fetched outside the map


def test_compare_runs_all_three_strategies(call_log, tmp_path):
    reports, truth, crews = call_log
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        ["replay", "--reports", str(reports), "--truth", str(truth), "--crews", str(crews),
         "--compare", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["strategy"] == "priority"  # the chosen strategy leads
    assert [row["strategy"] for row in kpis["comparison"]] == [
        "priority",
        "nearest",
        "mainline-first",
    ]
    assert "Strategy comparison" in (out / "report.html").read_text()


def test_an_unknown_strategy_is_refused_by_name(call_log, tmp_path):
    reports, _, crews = call_log
    result = runner.invoke(
        app,
        ["replay", "--reports", str(reports), "--crews", str(crews), "--strategy", "fastest",
         "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--strategy 'fastest': unknown strategy" in said(result)


def test_a_missing_file_is_named(call_log, tmp_path):
    _, _, crews = call_log
    missing = tmp_path / "nope.csv"
    result = runner.invoke(
        app, ["replay", "--reports", str(missing), "--crews", str(crews), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "nope.csv" in said(result) and "no such file" in said(result)


def test_a_bad_crew_line_is_named(call_log, tmp_path):
    reports, _, crews = call_log
    lines = crews.read_text().splitlines()
    lines[2] = lines[2].replace("lv", "welding", 1)
    bad = tmp_path / "crews.csv"
    bad.write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        app, ["replay", "--reports", str(reports), "--crews", str(bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "line 3" in said(result) and "welding" in said(result)


def test_strict_refuses_a_call_log_with_bad_lines(call_log, tmp_path):
    reports, _, crews = call_log
    result = runner.invoke(
        app,
        ["replay", "--reports", str(reports), "--crews", str(crews), "--strict",
         "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "bad line(s)" in said(result)


@pytest.mark.slow
def test_a_sweep_runs_on_a_local_dask_cluster(tmp_path):
    result = runner.invoke(
        app,
        ["sweep", "--scenario", "storm", "--strategies", "nearest,priority", "--crews", "3",
         "--seeds", "0,1", "--faults", "3", "--workers", "2", "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    runs = list(csv.DictReader((tmp_path / "sweep_runs.csv").open()))
    assert len(runs) == 4 and {r["strategy"] for r in runs} == {"nearest", "priority"}
    summary = list(csv.DictReader((tmp_path / "sweep_summary.csv").open()))
    assert len(summary) == 2 and all(r["seeds"] == "2" for r in summary)
    for row in summary:
        low, mean, high = (float(row[f"saidi_minutes_{k}"]) for k in ("ci_low", "mean", "ci_high"))
        assert low <= mean <= high
    assert "confidence interval" in (tmp_path / "sweep.html").read_text()


def test_a_sweep_names_an_unknown_scenario(tmp_path):
    result = runner.invoke(app, ["sweep", "--scenario", "tornado", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown scenario 'tornado'" in said(result)
