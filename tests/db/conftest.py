"""Backends for the persistence suite: SQLite always, PostGIS when
``GRIDMEND_TEST_POSTGRES_URL`` is set. Every test gets an empty database at head.

Alembic builds the schema from empty, as ``gridmend db upgrade`` does: once per run for the
``database`` fixture (each test gets a copy of the migrated SQLite file, or the run's own
PostGIS schema emptied), and per test for tests that take the bare ``backend`` (a new file
or a new schema, not migrated)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gridmend.db.base import load_all_models
from gridmend.db.migrate import upgrade
from gridmend.db.session import Database
from gridmend.topology import CustomerClass, Grid, GridBuilder, Kind, ServiceClass

POSTGRES_URL = os.environ.get("GRIDMEND_TEST_POSTGRES_URL")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgis",
        marks=[
            pytest.mark.postgis,
            pytest.mark.skipif(not POSTGRES_URL, reason="GRIDMEND_TEST_POSTGRES_URL not set"),
        ],
    ),
]


@dataclass
class Backend:
    """An empty database for one test: its URL (usable by the CLI too) and a Database."""

    name: str
    url: str

    def open(self) -> Database:
        """A new engine on the same database: what a restarted process would get."""
        return Database(self.url)


def _postgres_schema_url(schema: str) -> str:
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL)
    url = url.update_query_dict({"options": f"-csearch_path={schema},public"})
    return url.render_as_string(hide_password=False)


def _new_postgres_schema() -> str:
    assert POSTGRES_URL is not None
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema


def _drop_postgres_schema(schema: str) -> None:
    assert POSTGRES_URL is not None
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty, unmigrated database on each backend (a new file, or a new schema)."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'gridmend.sqlite'}")
        return
    schema = _new_postgres_schema()
    try:
        yield Backend("postgis", _postgres_schema_url(schema))
    finally:
        _drop_postgres_schema(schema)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; each test works on its own copy."""
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()  # checkpoints the WAL into the main file
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """A PostGIS schema migrated to head once per test run; tests empty it before use."""
    schema = _new_postgres_schema()
    url = _postgres_schema_url(schema)
    db = Database(url)
    upgrade(db.engine)
    db.dispose()
    try:
        yield url
    finally:
        _drop_postgres_schema(schema)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at head with no rows: a copy of the migrated SQLite file, or the run's
    migrated PostGIS schema with every table emptied."""
    if request.param == "sqlite":
        path = tmp_path / "gridmend.sqlite"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        db = Database(f"sqlite:///{path}")
    else:
        db = Database(request.getfixturevalue("migrated_postgres"))
        with db.engine.begin() as connection:  # DELETE beats TRUNCATE on tiny tables
            for table in reversed(load_all_models().sorted_tables):
                connection.execute(table.delete())
    try:
        yield db
    finally:
        db.dispose()


def small_grid(name: str = "testgrid") -> Grid:
    """A feeder with a breaker, a line, a fuse, two transformers and six meters (one hospital)."""
    b = GridBuilder(name)
    b.add_bus("B0", 7.90, 48.47)
    b.add_bus("B1", 7.90, 48.471)
    b.add_bus("B2", 7.905, 48.471)
    b.add_bus("B3", 7.905, 48.472)
    b.add_bus("L1", 7.9055, 48.4725)
    b.add_bus("B4", 7.91, 48.471)
    b.add_bus("L2", 7.9105, 48.4715)
    b.add_source("S", "B0", name="Substation")
    b.add_branch("CB1", Kind.BREAKER, "B0", "B1")
    b.add_branch(
        "LN1",
        Kind.LINE,
        "B1",
        "B2",
        geometry=[[7.90, 48.471], [7.9025, 48.4712], [7.905, 48.471]],
        attributes={"rating_a": 400, "note": None},
    )
    b.add_branch("F1", Kind.FUSE, "B2", "B3", lon=7.905, lat=48.4715)
    b.add_branch("T1", Kind.TRANSFORMER, "B3", "L1", service_class=ServiceClass.URBAN)
    b.add_branch("LN2", Kind.LINE, "B2", "B4")
    b.add_branch("T2", Kind.TRANSFORMER, "B4", "L2", service_class=ServiceClass.RURAL)
    for i in range(3):
        b.add_meter(
            f"M1{i}", "L1", address=f"Hauptstr. {i + 1}", lon=7.9055 + i * 1e-4, lat=48.4726
        )
    b.add_meter("M20", "L2", customer_class=CustomerClass.HOSPITAL, lon=7.9106, lat=48.4716)
    b.add_meter("M21", "L2", lon=7.9107, lat=48.4716)
    b.add_meter("M22", "L2", customer_id="C-22", lon=7.9108, lat=48.4716)
    return b.build()
