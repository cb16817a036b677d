"""Alembic builds the whole schema from an empty database, on SQLite and on PostGIS."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from gridmend.db.base import load_all_models
from gridmend.db.migrate import (
    current_revision,
    downgrade,
    head_revision,
    include_object,
    upgrade,
)
from gridmend.db.session import Database
from tests.db.conftest import Backend

GIST_INDEXED = {
    ("grid_elements", "geom"),
    ("reports", "geom"),
    ("faults", "area"),
    ("crews", "position"),
    ("planned_outages", "area"),
    ("road_edges", "geom"),
}

GIST_NAMES = {f"ix_{table}_{column}" for table, column in GIST_INDEXED}


def _tables(engine) -> set[str]:
    """gridmend's tables in this test's own schema (not what search_path makes visible)."""
    schema = None
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            schema = connection.scalar(text("SELECT current_schema()"))
    return set(inspect(engine).get_table_names(schema=schema)) - {"alembic_version"}


def test_upgrade_builds_every_table_from_an_empty_database(backend: Backend) -> None:
    db = backend.open()
    assert current_revision(db.engine) is None
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()
    assert _tables(db.engine) == set(load_all_models().tables)
    db.dispose()


def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds_them(backend: Backend) -> None:
    db = backend.open()
    upgrade(db.engine)
    downgrade(db.engine, "base")
    assert _tables(db.engine) == set()
    upgrade(db.engine)
    assert _tables(db.engine) == set(load_all_models().tables)
    db.dispose()


def test_the_migrated_schema_matches_the_models(backend: Backend) -> None:
    db = backend.open()
    upgrade(db.engine)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": True}
        )
        diff = compare_metadata(context, load_all_models())
    # GiST indexes exist only on PostGIS; SQLite filters areas in memory.
    if backend.name == "sqlite":
        diff = [d for d in diff if not (d[0] == "add_index" and d[1].name in GIST_NAMES)]
    assert diff == []
    db.dispose()


@pytest.mark.postgis
def test_every_area_queried_geometry_has_a_gist_index_on_postgis(backend: Backend) -> None:
    if backend.name != "postgis":
        pytest.skip("GiST indexes are a PostGIS feature")
    db = backend.open()
    upgrade(db.engine)
    with db.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema()")
        ).all()
    gist = {(t, d.split("(")[-1].rstrip(")").strip('"')) for t, d in rows if "USING gist" in d}
    assert gist >= GIST_INDEXED
    db.dispose()


def test_a_database_at_the_first_revision_upgrades_step_by_step_to_head(
    backend: Backend,
) -> None:
    db = backend.open()
    upgrade(db.engine, "0001_initial")
    assert current_revision(db.engine) == "0001_initial"
    assert "road_networks" not in _tables(db.engine)
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision()
    assert _tables(db.engine) == set(load_all_models().tables)
    db.dispose()


@pytest.mark.postgis
def test_a_version_table_elsewhere_on_the_search_path_is_not_taken_for_this_schema(
    backend: Backend,
) -> None:
    if backend.name != "postgis":
        pytest.skip("schemas and search_path are PostgreSQL's")
    shadow = f"shadow_{uuid.uuid4().hex[:8]}"
    db = backend.open()
    with db.engine.begin() as connection:
        own = connection.scalar(text("SELECT current_schema()"))
        connection.execute(text(f'CREATE SCHEMA "{shadow}"'))
        connection.execute(text(f'CREATE TABLE "{shadow}".alembic_version (version_num text)'))
        connection.execute(
            text(f'INSERT INTO "{shadow}".alembic_version VALUES (:head)'),
            {"head": head_revision()},
        )
    db.dispose()
    path = f"-csearch_path={own},{shadow},public"  # a migrated schema shows through
    url = make_url(backend.url).update_query_dict({"options": path})
    db = Database(url)
    try:
        assert current_revision(db.engine) is None
        upgrade(db.engine)
        assert _tables(db.engine) == set(load_all_models().tables)
    finally:
        db.dispose()
        with backend.open().engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{shadow}" CASCADE'))
