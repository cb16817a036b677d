"""The command line around the API: users and keys, ``gridmend serve`` and ``gridmend demo``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gridmend.api.cli import app as cli
from gridmend.api.repository import authenticate_api_key
from gridmend.db.session import Database

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite'}"


def test_users_add_and_keys_create_print_a_working_key_once(url: str) -> None:
    added = runner.invoke(
        cli, ["users", "add", "anna", "--role", "crew", "--crew", "SW-1", "--database-url", url]
    )
    assert added.exit_code == 0, added.output
    made = runner.invoke(cli, ["keys", "create", "anna", "--database-url", url, "--json"])
    assert made.exit_code == 0, made.output
    key = re.search(r'"key": "([^"]+)"', made.output).group(1)
    database = Database(url)
    with database.unit_of_work() as session:
        assert authenticate_api_key(session, key).prefix in key
    database.dispose()


def test_users_add_names_the_problem(url: str) -> None:
    bad_role = runner.invoke(cli, ["users", "add", "x", "--role", "boss", "--database-url", url])
    assert bad_role.exit_code == 2 and "role" in bad_role.output
    no_crew = runner.invoke(cli, ["users", "add", "x", "--role", "crew", "--database-url", url])
    assert no_crew.exit_code == 2 and "--crew" in no_crew.output
    runner.invoke(cli, ["users", "add", "y", "--role", "admin", "--database-url", url])
    twice = runner.invoke(cli, ["users", "add", "y", "--role", "admin", "--database-url", url])
    assert twice.exit_code == 2 and "exists" in twice.output
    missing = runner.invoke(cli, ["keys", "create", "nobody", "--database-url", url])
    assert missing.exit_code == 2 and "nobody" in missing.output


def test_demo_without_serving_prints_the_grid_and_a_trace() -> None:
    result = runner.invoke(cli, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "schutterwald/load/17" in result.output


def test_demo_serves_the_map_on_the_bundled_data_with_a_dispatcher_key(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: dict = {}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("gridmend.api.cli.demo.run", lambda app, host, port: served.update(app=app))
    result = runner.invoke(cli, ["demo", "--database-url", url, "--port", "8123"])
    assert result.exit_code == 0, result.output
    key = re.search(r"API key\s+(\S+)", result.output).group(1)
    assert f"http://127.0.0.1:8123/#key={key}" in result.output.replace("\n", "")
    client = TestClient(served["app"])
    assert client.get("/").status_code == 200
    summary = client.get("/v1/map/summary", headers={"X-API-Key": key}).json()
    assert summary["crews"] == 10 and summary["grid"]
    served["app"].state.service.close()


def test_serve_refuses_a_missing_crew_file_readably(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("gridmend.api.cli.serve.run", lambda app, host, port: None)
    result = runner.invoke(
        cli, ["serve", "--database-url", url, "--crews", str(tmp_path / "none.csv")]
    )
    assert result.exit_code == 2
    assert "none.csv" in result.output
