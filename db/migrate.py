"""Apply and inspect Alembic migrations programmatically (used by the CLI and the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from gridmend.db.base import load_all_models

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Only gridmend's own tables: never PostGIS's (``spatial_ref_sys``, tiger, topology)."""
    if type_ == "table" and reflected and compare_to is None:
        return name in load_all_models().tables
    return True


def version_table_schema(connection: Connection) -> str | None:
    """Where Alembic keeps its version table: the connection's own schema on PostgreSQL.

    Named explicitly so that a version table elsewhere on ``search_path`` (another
    deployment's, or ``public``'s) is never mistaken for this schema's.
    """
    if connection.dialect.name == "postgresql":
        return connection.dialect.default_schema_name
    return None


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at gridmend's migrations, no ini file needed.

    With ``connection`` the migrations run on it (inside the caller's schema and
    settings); without, ``env.py`` opens the configured database itself.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (creates every table on an empty database)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Step the schema back to ``revision`` (``"base"`` drops every gridmend table)."""
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    with engine.connect() as connection:
        opts = {"version_table_schema": version_table_schema(connection)}
        return MigrationContext.configure(connection, opts=opts).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of gridmend."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
