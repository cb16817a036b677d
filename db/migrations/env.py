"""Alembic environment: runs gridmend's migrations on PostgreSQL/PostGIS or SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gridmend.db.base import load_all_models
from gridmend.db.migrate import include_object, version_table_schema
from gridmend.db.session import make_engine

config = context.config
target_metadata = load_all_models()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by table copy
        compare_type=True,
        include_object=include_object,
        version_table_schema=version_table_schema(connection),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or None
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("gridmend migrations run online only: gridmend db upgrade")
run_migrations_online()
