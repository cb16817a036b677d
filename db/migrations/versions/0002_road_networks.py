"""Road networks: versioned imports of OSM road graphs, nodes and directed edges.

Revision ID: 0002_road_networks
Revises: 0001_initial
Create Date: 2026-11-25 01:19:05.235108
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gridmend.db.types import Geometry, UtcDateTime

revision: str = "0002_road_networks"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "road_networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("imported_at", UtcDateTime(), nullable=False),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("edge_count", sa.Integer(), nullable=False),
        sa.Column("highway_classes", JSON_DOCUMENT, nullable=False),
        sa.Column("summary", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_road_networks")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_road_networks_name_version")),
    )
    op.create_table(
        "road_nodes",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("osm_id", sa.BigInteger(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["road_networks.id"],
            name=op.f("fk_road_nodes_network_id_road_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("network_id", "idx", name=op.f("pk_road_nodes")),
    )
    op.create_table(
        "road_edges",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("tail", sa.Integer(), nullable=False),
        sa.Column("head", sa.Integer(), nullable=False),
        sa.Column("way_id", sa.BigInteger(), nullable=False),
        sa.Column("highway", sa.String(length=64), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=False),
        sa.Column("base_time_ds", sa.Integer(), nullable=False),
        sa.Column("oneway", sa.Boolean(), nullable=False),
        sa.Column("twin", sa.Integer(), nullable=False),
        sa.Column("geom", Geometry("LINESTRING"), nullable=True),
        sa.Column("minx", sa.Float(), nullable=True),
        sa.Column("miny", sa.Float(), nullable=True),
        sa.Column("maxx", sa.Float(), nullable=True),
        sa.Column("maxy", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["road_networks.id"],
            name=op.f("fk_road_edges_network_id_road_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("network_id", "idx", name=op.f("pk_road_edges")),
    )
    op.create_index(op.f("ix_road_edges_bbox"), "road_edges", ["network_id", "minx", "miny"])
    if op.get_bind().dialect.name == "postgresql":  # area queries; SQLite filters in memory
        op.create_index("ix_road_edges_geom", "road_edges", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("road_edges")
    op.drop_table("road_nodes")
    op.drop_table("road_networks")
