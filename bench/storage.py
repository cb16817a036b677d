"""Storage figures: reports persisted per second through the storage layer, one transaction
per report (what an HTTP intake does) and 1,000 per transaction (batch upload), on the
embedded SQLite file and on PostGIS when one is reachable; plus a grid import.

Run: ``.venv/bin/python bench/storage.py [--quick]``

PostGIS is taken from ``GRIDMEND_BENCH_POSTGRES_URL``, else ``GRIDMEND_TEST_POSTGRES_URL``;
the bench works in a throw-away schema and drops it afterwards. Each report is written
write-ahead (``INSERT … ON CONFLICT DO NOTHING`` + read-back) and committed, exactly as
intake does; SQLite runs in WAL mode with ``synchronous=FULL``, PostgreSQL with its
server defaults (``fsync`` on).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gridmend.db.migrate import upgrade
from gridmend.db.session import Database
from gridmend.dispatch.repository import IncomingReport, record_report, record_reports

BATCH = 1000
T0 = datetime(2026, 7, 14, 18, 0, tzinfo=UTC)


def storm_reports(n: int, prefix: str, rng: np.random.Generator) -> list[IncomingReport]:
    """Phone and app reports spread over an evening, as the intake API would pass them on."""
    lon = 7.9 + rng.normal(0, 0.02, n)
    lat = 48.47 + rng.normal(0, 0.02, n)
    meters = rng.integers(0, 15_000, n)
    out = []
    for i in range(n):
        report_id = f"{prefix}-{i:07d}"
        payload = {
            "report_id": report_id,
            "time": (T0 + timedelta(seconds=i)).isoformat(),
            "channel": "phone" if i % 3 else "app",
            "meter_id": f"M{meters[i]:05d}",
            "lon": round(float(lon[i]), 6),
            "lat": round(float(lat[i]), 6),
            "scope": "my_building",
            "text": "no power since the storm",
        }
        out.append(
            IncomingReport(
                report_id=report_id,
                payload=payload,
                reported_at=T0 + timedelta(seconds=i),
                channel=payload["channel"],
                meter_id=payload["meter_id"],
                lon=payload["lon"],
                lat=payload["lat"],
                crs="wgs84",
                scope="my_building",
                text=payload["text"],
            )
        )
    return out


@contextmanager
def sqlite_database() -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.sqlite'}")
        upgrade(db.engine)
        try:
            yield db
        finally:
            db.dispose()


@contextmanager
def postgis_database(url: str) -> Iterator[Database]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema},public"})
    db = Database(scoped)
    try:
        upgrade(db.engine)
        yield db
    finally:
        db.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def measure(db: Database, single_n: int, batch_n: int, rng: np.random.Generator) -> dict:
    single = storm_reports(single_n, "S", rng)
    started = time.perf_counter()
    for report in single:
        with db.unit_of_work() as session:
            record_report(session, report)
    single_rate = single_n / (time.perf_counter() - started)

    batch = storm_reports(batch_n, "B", rng)
    started = time.perf_counter()
    for start in range(0, batch_n, BATCH):
        with db.unit_of_work() as session:
            record_reports(session, batch[start : start + BATCH])
    batch_rate = batch_n / (time.perf_counter() - started)

    # Replays: the same ids again (idempotent repeats read the first answer back).
    started = time.perf_counter()
    for report in single[: max(1, single_n // 2)]:
        with db.unit_of_work() as session:
            assert not record_report(session, report).created
    repeat_rate = max(1, single_n // 2) / (time.perf_counter() - started)
    return {"single": single_rate, "batch": batch_rate, "repeat": repeat_rate}


def grid_import_seconds(db: Database) -> tuple[int, float] | None:
    from gridmend.fixtures import fixture_names
    from gridmend.topology.loading import load_grid
    from gridmend.topology.network import Topology
    from gridmend.topology.repository import import_grid

    if "oberrhein" not in fixture_names():
        return None
    topology = Topology(load_grid("oberrhein"))
    started = time.perf_counter()
    with db.unit_of_work() as session:
        import_grid(session, topology, source="oberrhein")
    return len(topology.grid), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reports (smoke run)")
    args = parser.parse_args(argv)
    single_n, batch_n = (300, 5_000) if args.quick else (2_000, 50_000)
    backends: list[tuple[str, object]] = [("sqlite", sqlite_database())]
    pg_url = os.environ.get("GRIDMEND_BENCH_POSTGRES_URL") or os.environ.get(
        "GRIDMEND_TEST_POSTGRES_URL"
    )
    if pg_url:
        backends.append(("postgis", postgis_database(pg_url)))
    else:
        print("PostGIS: GRIDMEND_TEST_POSTGRES_URL not set, skipped")
    print(f"{single_n:,} reports one per transaction, {batch_n:,} in transactions of {BATCH:,}")
    print(
        f"{'backend':8} {'single/s':>10} {'batch/s':>10} {'ratio':>7} {'repeat/s':>10} grid import"
    )
    for name, manager in backends:
        try:
            with manager as db:  # type: ignore[attr-defined]
                rates = measure(db, single_n, batch_n, np.random.default_rng(6))
                grid = grid_import_seconds(db)
        except Exception as err:  # an unreachable server is reported, not fatal
            print(f"{name:8} unavailable: {err.__class__.__name__}: {str(err).splitlines()[0]}")
            continue
        imported = f"{grid[0]:,} elements in {grid[1]:.1f} s" if grid else "-"
        print(
            f"{name:8} {rates['single']:10,.0f} {rates['batch']:10,.0f} "
            f"{rates['batch'] / rates['single']:6.1f}x {rates['repeat']:10,.0f} {imported}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
