"""The declarative base every domain model derives from, with stable constraint names.

Named constraints keep Alembic migrations identical on PostgreSQL and SQLite.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base: all gridmend tables share this metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def load_all_models() -> MetaData:
    """Import every domain's models so the metadata is complete (Alembic, tests)."""
    import gridmend.api.models
    import gridmend.dispatch.models
    import gridmend.geo.models
    import gridmend.topology.models  # noqa: F401

    return Base.metadata
