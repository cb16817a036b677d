"""Column types that behave the same on PostGIS and on the embedded SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import shapely
from geoalchemy2 import Geometry as PostgisGeometry
from geoalchemy2.elements import WKBElement
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import JSON, DateTime, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Every stored geometry is WGS-84 lon/lat.
SRID = 4326


def _is_postgresql(dialect: Dialect | None) -> bool:
    return dialect is not None and dialect.name == "postgresql"


class Geometry(TypeDecorator[BaseGeometry]):
    """A shapely geometry: PostGIS ``geometry(<type>, 4326)`` on PostgreSQL, WKB elsewhere.

    Models and repositories only ever see shapely objects, so the same code runs on both
    backends; area queries that need PostGIS check :func:`is_postgresql` and fall back to
    in-memory filtering on SQLite.
    """

    impl = LargeBinary
    cache_ok = True
    # GeoAlchemy2's DDL hooks look for this; GiST indexes are declared explicitly instead.
    spatial_index = False

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        super().__init__()
        self.geometry_type = geometry_type.upper()

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if _is_postgresql(dialect):
            return dialect.type_descriptor(
                PostgisGeometry(self.geometry_type, srid=SRID, spatial_index=False)
            )
        plain = LargeBinary()
        # GeoAlchemy2 probes TypeDecorators with dialect=None while it plans DDL.
        return plain if dialect is None else dialect.type_descriptor(plain)

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, BaseGeometry):
            raise TypeError(f"expected a shapely geometry, got {type(value).__name__}")
        if _is_postgresql(dialect):
            return from_shape(value, srid=SRID)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        if value is None:
            return None
        if isinstance(value, WKBElement):
            return to_shape(value)
        return shapely.from_wkb(bytes(value))

    def __repr__(self) -> str:
        return f"Geometry({self.geometry_type!r})"


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and always read back timezone-aware.

    SQLite drops the offset of a ``DateTime(timezone=True)``; this type normalises on the
    way in and re-attaches UTC on the way out, so comparisons never mix naive and aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware time")
        value = value.astimezone(UTC)
        return value if _is_postgresql(dialect) else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def __repr__(self) -> str:
        return "UtcDateTime()"


#: A JSON document: ``jsonb`` on PostgreSQL, JSON text on SQLite.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware, for default column values."""
    return datetime.now(UTC)
