"""HTTP intake figures: outage reports per second through the API, persisted, one report per
request and in batches, on this machine with the load generator on loopback.

Run: ``.venv/bin/python bench/http_intake.py [--quick] [--postgres]``

The app (``create_app`` on the bundled Oberrhein grid, engine ticker off, intake limits
lifted) is served by uvicorn in a separate process on 127.0.0.1; this process generates the
load with httpx. Reports are storm calls at real meters (id + location), each with a unique
report id, so every one is stored write-ahead and answered by the engine; a share of the
households (``--callback-share``, default 0.3) leave a webhook callback URL, so their
progress notifications are written to the outbox in the same transaction (the count is
printed). Counts and time are bounded; at the end the database is asked how many reports it
holds, so only persisted reports are counted. The storm is staffed with mutual-aid crews
(``--mutual-aid``, default 200 beside the bundled ten), as a utility staffs a storm evening,
so every fault gets a crew and the figures stay comparable with earlier runs. With fewer
crews (``--mutual-aid 0``) the surplus work orders wait for a crew and intake still
succeeds: a waiting order is stored once, not again at the next step (the storm regression
test in ``tests/api/test_intake.py``).

Database: a fresh SQLite file, or with ``--postgres`` a throw-away schema on
``GRIDMEND_BENCH_POSTGRES_URL`` / ``GRIDMEND_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from gridmend.api.models import OutboxEvent
from gridmend.api.repository import create_api_key, create_user
from gridmend.db.migrate import upgrade
from gridmend.db.session import Database
from gridmend.dispatch.models import Report
from gridmend.topology import Kind
from gridmend.topology.loading import load_grid

TARGET_BATCHED = 1_000.0  # reports per second, batched (issue #7)


# ---------------------------------------------------------------------------------- server
def storm_roster(folder: Path, mutual_aid: int) -> Path:
    """The bundled Oberrhein crews plus ``mutual_aid`` crews lent by neighbouring utilities,
    stationed at the same depots (a storm evening's staffing)."""
    from gridmend.api.settings import BUNDLED_CREWS

    lines = BUNDLED_CREWS["oberrhein"].read_text().strip().splitlines()
    header, crews = lines[0], lines[1:]
    extra = []
    for n in range(mutual_aid):
        fields = crews[n % len(crews)].split(",")
        fields[0], fields[1] = f"MA-{n + 1}", str(9000 + n)
        fields[-1] = f"MA {n + 1}"
        extra.append(",".join(fields))
    path = folder / "storm_crews.csv"
    path.write_text("\n".join([header, *crews, *extra]) + "\n")
    return path


def serve(port: int, database_url: str, crews: Path | None) -> None:
    """The server process: the real app under uvicorn, on loopback only."""
    import uvicorn

    from gridmend.api.app import create_app
    from gridmend.api.settings import ApiSettings

    app = create_app(
        ApiSettings(
            database_url=database_url,
            crews=crews,
            tick_interval_s=None,
            migrate=False,
            intake_rate_per_s=1e9,
            intake_burst=1e9,
            data_dir=Path(tempfile.mkdtemp(prefix="gridmend-bench-data-")),
        )
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, process: subprocess.Popen, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not come up in time")


# ---------------------------------------------------------------------------------- load
def storm_calls(
    n: int,
    prefix: str,
    rng: np.random.Generator,
    outages: int = 60,
    per_outage: int = 40,
    callback_share: float = 0.0,
) -> list[dict[str, Any]]:
    """Calls from real Oberrhein meters (id and location), as a storm evening brings them:
    ``outages`` dark neighbourhoods of ``per_outage`` meters each, every household calling;
    ``callback_share`` of them leave a webhook URL for their progress updates."""
    grid = load_grid("oberrhein")
    meters = grid.indices_of(Kind.METER)
    lon, lat = grid.lon[meters], grid.lat[meters]
    centres = rng.choice(len(meters), size=outages, replace=False)
    areas = [
        meters[np.argsort((lon - lon[c]) ** 2 + (lat - lat[c]) ** 2)[:per_outage]] for c in centres
    ]
    picked = [areas[i % outages][rng.integers(per_outage)] for i in range(n)]
    start = datetime.now(UTC) - timedelta(minutes=5)  # calls of the last few minutes
    hooks = rng.random(n) < callback_share
    calls = [
        {
            "report_id": f"{prefix}-{i:07d}",
            "time": (start + timedelta(milliseconds=i)).isoformat(),
            "channel": "phone" if i % 3 else "app",
            "meter_id": str(grid.element_ids[m]),
            "lon": round(float(grid.lon[m]), 6),
            "lat": round(float(grid.lat[m]), 6),
            "scope": "my_building",
            "text": "no power since the storm",
        }
        for i, m in enumerate(picked)
    ]
    for call, hook in zip(calls, hooks.tolist(), strict=True):
        if hook:
            call["callback_url"] = f"https://hooks.example.com/gridmend/{call['report_id']}"
    return calls


@dataclass
class Run:
    sent: int
    ok: int
    seconds: float
    statuses: dict[int, int]
    errors: dict[int, str]

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def post_all(
    base: str,
    key: str,
    path: str,
    bodies: list[dict[str, Any]],
    reports_in: list[int],
    concurrency: int,
    time_limit_s: float,
) -> Run:
    """POST every body with ``concurrency`` requests in flight; stop early at the time limit."""
    statuses: dict[int, int] = {}
    errors: dict[int, str] = {}
    sent = ok = 0
    pending = iter(range(len(bodies)))
    deadline = time.perf_counter() + time_limit_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-API-Key": key}, timeout=120.0, limits=limits
    ) as client:

        async def lane() -> None:
            nonlocal sent, ok
            for i in pending:
                if time.perf_counter() > deadline:
                    return
                response = await client.post(path, json=bodies[i])
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code != 200:
                    errors.setdefault(response.status_code, response.text[:200])
                sent += reports_in[i]
                if response.status_code == 200:
                    ok += reports_in[i]

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Run(sent, ok, seconds, statuses, errors)


# ---------------------------------------------------------------------------------- database
def postgres_schema_url(base_url: str) -> tuple[str, str]:
    schema = f"bench_http_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema},public"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(base_url: str, schema: str) -> None:
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def stored_counts(url: str) -> tuple[int, int]:
    """Reports and outbox rows the database holds."""
    db = Database(url)
    try:
        with db.unit_of_work() as session:
            reports = session.scalar(select(func.count()).select_from(Report)) or 0
            outbox = session.scalar(select(func.count()).select_from(OutboxEvent)) or 0
            return int(reports), int(outbox)
    finally:
        db.dispose()


# ---------------------------------------------------------------------------------- main
def measure(url: str, args: argparse.Namespace) -> dict[str, Run]:
    db = Database(url)
    upgrade(db.engine)
    with db.unit_of_work() as session:
        user = create_user(session, "bench-intake", role="dispatcher")
        _, key = create_api_key(session, user.id, name="bench")
    db.dispose()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(port), "--url", url]
    if args.mutual_aid:
        folder = Path(tempfile.mkdtemp(prefix="gridmend-bench-crews-"))
        command += ["--crews", str(storm_roster(folder, args.mutual_aid))]
    server = subprocess.Popen(command)
    try:
        wait_until_up(base, server)
        rng = np.random.default_rng(7)
        single_calls = storm_calls(args.single, "S", rng, callback_share=args.callback_share)
        batch_calls = storm_calls(args.batched, "B", rng, callback_share=args.callback_share)
        batches = [
            {"reports": batch_calls[i : i + args.batch_size]}
            for i in range(0, len(batch_calls), args.batch_size)
        ]
        single = asyncio.run(
            post_all(
                base,
                key,
                "/v1/reports",
                single_calls,
                [1] * len(single_calls),
                args.concurrency,
                args.time_limit,
            )
        )
        batch = asyncio.run(
            post_all(
                base,
                key,
                "/v1/reports:batch",
                batches,
                [len(b["reports"]) for b in batches],
                args.batch_concurrency,
                args.time_limit,
            )
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {"single": single, "batch": batch, "stored": stored_counts(url)}  # type: ignore[dict-item]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (CI smoke run)")
    parser.add_argument("--postgres", action="store_true", help="PostGIS instead of SQLite")
    parser.add_argument("--single", type=int, default=600, help="reports sent one by one")
    parser.add_argument("--batched", type=int, default=10_000, help="reports sent in batches")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=4, help="single requests in flight")
    parser.add_argument("--batch-concurrency", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per phase")
    parser.add_argument(
        "--mutual-aid", type=int, default=200, help="extra crews beside the bundled ten"
    )
    parser.add_argument(
        "--callback-share", type=float, default=0.3, help="share of callers leaving a webhook"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--crews", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.url, args.crews)
        return 0
    if args.quick:
        args.single, args.batched, args.time_limit = 200, 3_000, 20.0

    schema = base_pg = None
    if args.postgres:
        base_pg = os.environ.get("GRIDMEND_BENCH_POSTGRES_URL") or os.environ.get(
            "GRIDMEND_TEST_POSTGRES_URL"
        )
        if not base_pg:
            print("--postgres needs GRIDMEND_BENCH_POSTGRES_URL or GRIDMEND_TEST_POSTGRES_URL")
            return 2
        url, schema = postgres_schema_url(base_pg)
        backend = "PostGIS"
    else:
        folder = Path(tempfile.mkdtemp(prefix="gridmend-bench-http-"))
        url = f"sqlite:///{folder / 'gridmend.sqlite'}"
        backend = "SQLite (WAL)"
    try:
        results = measure(url, args)
    finally:
        if schema and base_pg:
            drop_schema(base_pg, schema)
    single, batch = results["single"], results["batch"]
    stored, outbox = results["stored"]
    print(f"HTTP intake on {os.cpu_count()} cores, {backend}, uvicorn 1 worker, httpx on loopback")
    print(
        f"  single : {single.ok:>6} reports in {single.seconds:6.2f} s = "
        f"{single.per_second:8.0f} reports/s  ({args.concurrency} in flight) {single.statuses}"
    )
    print(
        f"  batch  : {batch.ok:>6} reports in {batch.seconds:6.2f} s = "
        f"{batch.per_second:8.0f} reports/s  ({args.batch_size}/request, "
        f"{args.batch_concurrency} in flight) {batch.statuses}"
    )
    for run in (single, batch):
        for status, body in run.errors.items():
            print(f"  first {status}: {body}")
    ratio = batch.per_second / single.per_second if single.per_second else float("inf")
    print(f"  batch/single ratio: {ratio:.1f}x")
    print(
        f"  persisted: {stored} reports in the database (answered: {single.ok + batch.ok}), "
        f"{outbox} webhook notifications in the outbox"
    )
    verdict = "meets" if batch.per_second >= TARGET_BATCHED else "MISSES"
    print(f"  target >= {TARGET_BATCHED:.0f} reports/s batched: {verdict}")
    return 0 if stored >= single.ok + batch.ok else 1


if __name__ == "__main__":
    sys.exit(main())
