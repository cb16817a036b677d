"""Tables of imported road networks: every import is a new, immutable, numbered version.

Edges keep their CSR order from :class:`~gridmend.geo.road_graph.RoadGraph`, so a stored
network reloads array for array and routes exactly as it did when imported.
"""

from __future__ import annotations

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridmend.db.base import Base
from gridmend.db.mixins import VersionedImport
from gridmend.db.types import Geometry, JsonDocument


class RoadNetwork(VersionedImport, Base):
    """One import of an OSM road file: name, version, source and size."""

    __tablename__ = "road_networks"

    node_count: Mapped[int] = mapped_column(Integer)
    edge_count: Mapped[int] = mapped_column(Integer)
    highway_classes: Mapped[list[str]] = mapped_column(JsonDocument, default=list)


class RoadNode(Base):
    """A road junction or shape node of one network."""

    __tablename__ = "road_nodes"

    network_id: Mapped[int] = mapped_column(
        ForeignKey("road_networks.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    osm_id: Mapped[int] = mapped_column(BigInteger)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)


class RoadEdge(Base):
    """A directed road edge with its shape; ``minx … maxy`` serve SQLite's area queries."""

    __tablename__ = "road_edges"
    __table_args__ = (
        Index("ix_road_edges_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
        Index("ix_road_edges_bbox", "network_id", "minx", "miny"),
    )

    network_id: Mapped[int] = mapped_column(
        ForeignKey("road_networks.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    tail: Mapped[int] = mapped_column(Integer)
    head: Mapped[int] = mapped_column(Integer)
    way_id: Mapped[int] = mapped_column(BigInteger)
    highway: Mapped[str] = mapped_column(String(64))
    length_m: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float] = mapped_column(Float)
    base_time_ds: Mapped[int] = mapped_column(Integer)
    oneway: Mapped[bool] = mapped_column(Boolean)
    twin: Mapped[int] = mapped_column(Integer)
    geom: Mapped[BaseGeometry | None] = mapped_column(Geometry("LINESTRING"))
    minx: Mapped[float | None] = mapped_column(Float)
    miny: Mapped[float | None] = mapped_column(Float)
    maxx: Mapped[float | None] = mapped_column(Float)
    maxy: Mapped[float | None] = mapped_column(Float)
