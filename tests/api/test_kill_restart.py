"""A real server killed mid-storm loses no acknowledged report and duplicates none."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from gridmend.api.cli import app as cli
from gridmend.db.session import Database
from gridmend.dispatch.models import Report
from gridmend.topology import Kind
from gridmend.topology.loading import load_grid
from tests.api.scenario import call

T0 = 1_784_000_000.0  # a storm night in 2026


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(url: str, port: int, data_dir: Path) -> subprocess.Popen:
    gridmend = Path(sys.executable).with_name("gridmend")
    command = [
        str(gridmend),
        "serve",
        "--port",
        str(port),
        "--database-url",
        url,
        "--data-dir",
        str(data_dir),
        "--tick",
        "0",
        "--no-webhooks",
    ]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("the server did not come up within 60 s")


def _post(client: httpx.Client, body: dict, timeout: float) -> httpx.Response:
    """A phone app's POST: backs off and retries while the intake rate limit says so."""
    while True:
        r = client.post("/v1/reports", json=body, timeout=timeout)
        if r.status_code != 429:
            return r
        time.sleep(max(float(r.headers.get("Retry-After", "0") or 0), 0.05))


@pytest.mark.slow
def test_a_server_killed_mid_storm_keeps_every_acknowledged_report_exactly_once(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'storm.sqlite'}"
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["users", "add", "desk", "--role", "dispatcher", "--database-url", url]
        ).exit_code
        == 0
    )
    made = runner.invoke(cli, ["keys", "create", "desk", "--database-url", url, "--json"])
    key = re.search(r'"key": "([^"]+)"', made.output).group(1)
    headers = {"X-API-Key": key}

    grid = load_grid("oberrhein")
    meters = [grid.element_ids[int(i)] for i in grid.indices_of(Kind.METER)]
    calls = [call(f"k-{i}", meters[(i * 37) % len(meters)], T0 + i) for i in range(400)]

    port = _free_port()
    server = _start_server(url, port, tmp_path / "data")
    acknowledged: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            for body in calls:
                if stop.is_set():
                    return
                try:
                    r = _post(client, body, timeout=10)
                except httpx.HTTPError:
                    return  # the server died under us: this one was never acknowledged
                if r.status_code in (200, 422):
                    acknowledged.append(body["report_id"])

    thread = threading.Thread(target=caller)
    thread.start()
    while len(acknowledged) < 60 and thread.is_alive():
        time.sleep(0.02)
    os.killpg(server.pid, signal.SIGKILL)  # no shutdown, no flush: a power cut
    server.wait()
    stop.set()
    thread.join()
    assert len(acknowledged) >= 60

    # Every acknowledged report was on disk before its answer left the server.
    database = Database(url)
    with database.unit_of_work() as session:
        stored = {r.report_id: r for r in session.scalars(select(Report))}
    assert set(acknowledged) <= set(stored)
    assert all(stored[r].answer is not None for r in acknowledged)

    # After a restart, the callers' phones retry everything: nothing is taken twice.
    server = _start_server(url, port, tmp_path / "data")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            for body in calls:
                r = _post(client, body, timeout=30)
                assert r.status_code in (200, 422), r.text
                if body["report_id"] in acknowledged and r.status_code == 200:
                    first = stored[body["report_id"]].answer
                    assert r.json()["answer"]["answer"] == first["answer"]
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    with database.unit_of_work() as session:
        ids = list(session.scalars(select(Report.report_id)))
    database.dispose()
    assert len(ids) == len(set(ids)) == len(calls)
