"""``gridmend roads summary`` and ``gridmend roads eta`` on the bundled Helsinki extract."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gridmend.api.cli import app
from gridmend.geo.coordinates import from_wgs84

runner = CliRunner()
CREW, FAULT = (24.9384, 60.1699), (24.9500, 60.1650)


def _ll(point: tuple[float, float]) -> str:
    return f"{point[0]:.7f},{point[1]:.7f}"


@pytest.fixture(autouse=True)
def _cache(monkeypatch, road_cache):
    monkeypatch.setenv("GRIDMEND_CACHE_DIR", str(road_cache))


def test_summary_reports_size_one_ways_and_cache():
    result = runner.invoke(app, ["roads", "summary", "helsinki", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["nodes"] > 1000 and data["edges"] > 1500
    assert 0.2 < data["one_way_share"] < 0.6 and 0.5 < data["scc_share"] <= 1.0
    again = json.loads(runner.invoke(app, ["roads", "summary", "helsinki", "--json"]).output)
    assert again["cache_hit"] is True
    table = runner.invoke(app, ["roads", "summary", "helsinki"])
    assert table.exit_code == 0 and "one way share" in table.output


def test_eta_gives_time_distance_and_route_linestring():
    args = ["roads", "eta", "helsinki", "--from", _ll(CREW), "--to", _ll(FAULT)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert 30 < data["seconds"] < 1200 and 500 < data["metres"] < 5000
    assert data["approximate"] is False
    assert data["route"]["type"] == "LineString" and len(data["route"]["coordinates"]) > 2
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "min" in text.output


def test_eta_accepts_gcj02_input_and_gives_the_same_answer():
    wgs = json.loads(
        runner.invoke(
            app,
            [
                "roads",
                "eta",
                "helsinki",
                "--from",
                _ll(CREW),
                "--to",
                _ll(FAULT),
                "--json",
            ],
        ).output
    )
    # outside China GCJ-02 equals WGS-84, so a Helsinki GCJ-02 fix must route identically
    g = from_wgs84(*CREW, "gcj02")
    gcj = json.loads(
        runner.invoke(
            app,
            [
                "roads",
                "eta",
                "helsinki",
                "--from",
                _ll(g),
                "--to",
                _ll(FAULT),
                "--crs",
                "gcj02",
                "--json",
            ],
        ).output
    )
    assert gcj["seconds"] == wgs["seconds"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["roads", "eta", "helsinki", "--from", "24.9x,60.1", "--to", "24.95,60.165"], "--from"),
        (
            ["roads", "eta", "helsinki", "--from", "24.93,60.17", "--to", "25.9,61.0"],
            "nearest road",
        ),
        (
            [
                "roads",
                "eta",
                "helsinki",
                "--from",
                "24.93,60.17",
                "--to",
                "24.95,60.16",
                "--crs",
                "utm",
            ],
            "utm",
        ),
        (["roads", "summary", "atlantis"], "atlantis"),
    ],
)
def test_bad_input_exits_non_zero_naming_the_problem(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output.replace("\n", "")
