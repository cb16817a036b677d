"""Tables of the grid snapshot: every import is a new, immutable, numbered version.

Elements keep their index in the imported :class:`~gridmend.topology.grid.Grid`, so a
snapshot reloads column-wise in element order and the in-memory topology comes back exactly
as it was traced at import.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridmend.db.base import Base
from gridmend.db.mixins import VersionedImport
from gridmend.db.types import Geometry, JsonDocument


class GridSnapshot(VersionedImport, Base):
    """One import of a grid: name, version, where it came from, and its size."""

    __tablename__ = "grid_snapshots"

    bus_count: Mapped[int] = mapped_column(Integer)
    element_count: Mapped[int] = mapped_column(Integer)
    meter_count: Mapped[int] = mapped_column(Integer)

    elements: Mapped[list[GridElement]] = relationship(
        back_populates="snapshot", lazy="raise", cascade="all, delete-orphan"
    )


class GridBus(Base):
    """A node of the grid (busbar or junction) in one snapshot."""

    __tablename__ = "grid_buses"
    __table_args__ = (UniqueConstraint("snapshot_id", "bus_id"),)

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("grid_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    bus_id: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)


class GridElement(Base):
    """A grid element (line, device, transformer, source, meter) with its geometry.

    ``minx … maxy`` carry the geometry's bounding box so SQLite can narrow an area query
    with plain range conditions before the exact test in memory; PostGIS uses the GiST
    index on ``geom``.
    """

    __tablename__ = "grid_elements"
    __table_args__ = (
        UniqueConstraint("snapshot_id", "element_id"),
        Index("ix_grid_elements_geom", "geom", postgresql_using="gist").ddl_if(
            dialect="postgresql"
        ),
        Index("ix_grid_elements_bbox", "snapshot_id", "minx", "miny"),
        Index("ix_grid_elements_snapshot_kind", "snapshot_id", "kind"),
    )

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("grid_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    element_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    terminal_a: Mapped[int] = mapped_column(Integer)
    terminal_b: Mapped[int] = mapped_column(Integer)
    normally_open: Mapped[bool] = mapped_column(Boolean, default=False)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    length_m: Mapped[float | None] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(String(300))
    customer_id: Mapped[str | None] = mapped_column(String(200))
    customer_class: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(Text)
    service_class: Mapped[str | None] = mapped_column(String(16))
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    geom: Mapped[BaseGeometry | None] = mapped_column(Geometry())
    #: True when ``geom`` is the line path given in the grid file, not drawn bus to bus.
    path_given: Mapped[bool] = mapped_column(Boolean, default=False)
    minx: Mapped[float | None] = mapped_column(Float)
    miny: Mapped[float | None] = mapped_column(Float)
    maxx: Mapped[float | None] = mapped_column(Float)
    maxy: Mapped[float | None] = mapped_column(Float)

    snapshot: Mapped[GridSnapshot] = relationship(back_populates="elements", lazy="raise")
