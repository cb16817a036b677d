"""Initial schema: grid snapshots, dispatch record, API edge and outbox.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25 01:10:31.075537
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from gridmend.db.types import Geometry, UtcDateTime

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _gist_index(name: str, table: str, column: str) -> None:
    """A GiST index for area queries; PostGIS only (SQLite filters in memory)."""
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(name, table, [column], postgresql_using="gist")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Geometry columns need PostGIS; a no-op where it is installed already.
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "crews",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("staff_number", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("members", JSON_DOCUMENT, nullable=False),
        sa.Column("skills", JSON_DOCUMENT, nullable=False),
        sa.Column("vehicle", sa.String(length=200), nullable=True),
        sa.Column("depot", Geometry("POINT"), nullable=True),
        sa.Column("shift_start", UtcDateTime(), nullable=True),
        sa.Column("shift_end", UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("position", Geometry("POINT"), nullable=True),
        sa.Column("last_fix_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crews")),
        sa.UniqueConstraint("staff_number", name=op.f("uq_crews_staff_number")),
    )
    _gist_index("ix_crews_position", "crews", "position")

    op.create_table(
        "grid_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("imported_at", UtcDateTime(), nullable=False),
        sa.Column("bus_count", sa.Integer(), nullable=False),
        sa.Column("element_count", sa.Integer(), nullable=False),
        sa.Column("meter_count", sa.Integer(), nullable=False),
        sa.Column("summary", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_snapshots")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_grid_snapshots_name_version")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", JSON_DOCUMENT, nullable=True),
        sa.PrimaryKeyConstraint("key", "scope", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "planned_outages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("devices", JSON_DOCUMENT, nullable=False),
        sa.Column("area", Geometry("GEOMETRY"), nullable=True),
        sa.Column("starts_at", UtcDateTime(), nullable=False),
        sa.Column("ends_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("cancelled_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_planned_outages")),
    )
    _gist_index("ix_planned_outages_area", "planned_outages", "area")
    op.create_index(op.f("ix_planned_outages_window"), "planned_outages", ["ends_at"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("disabled_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("scopes", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_user_id"), "api_keys", ["user_id"])

    op.create_table(
        "crew_positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crew_id", sa.String(length=64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["crew_id"],
            ["crews.id"],
            name=op.f("fk_crew_positions_crew_id_crews"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crew_positions")),
    )
    op.create_index(op.f("ix_crew_positions_crew_at"), "crew_positions", ["crew_id", "at"])

    op.create_table(
        "faults",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.Column("suspected_device", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("customer_count", sa.Integer(), nullable=False),
        sa.Column("critical_count", sa.Integer(), nullable=False),
        sa.Column("area", Geometry("GEOMETRY"), nullable=True),
        sa.Column("first_report_at", UtcDateTime(), nullable=True),
        sa.Column("eta", UtcDateTime(), nullable=True),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["faults.id"], name=op.f("fk_faults_merged_into_faults")
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["grid_snapshots.id"],
            name=op.f("fk_faults_snapshot_id_grid_snapshots"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faults")),
    )
    _gist_index("ix_faults_area", "faults", "area")
    op.create_index(op.f("ix_faults_status"), "faults", ["status"])

    op.create_table(
        "grid_buses",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("bus_id", sa.String(length=200), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["grid_snapshots.id"],
            name=op.f("fk_grid_buses_snapshot_id_grid_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "idx", name=op.f("pk_grid_buses")),
        sa.UniqueConstraint("snapshot_id", "bus_id", name=op.f("uq_grid_buses_snapshot_id_bus_id")),
    )
    op.create_table(
        "grid_elements",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("element_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("terminal_a", sa.Integer(), nullable=False),
        sa.Column("terminal_b", sa.Integer(), nullable=False),
        sa.Column("normally_open", sa.Boolean(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("length_m", sa.Float(), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("customer_class", sa.String(length=32), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("service_class", sa.String(length=16), nullable=True),
        sa.Column("attributes", JSON_DOCUMENT, nullable=True),
        sa.Column("geom", Geometry("GEOMETRY"), nullable=True),
        sa.Column("path_given", sa.Boolean(), nullable=False),
        sa.Column("minx", sa.Float(), nullable=True),
        sa.Column("miny", sa.Float(), nullable=True),
        sa.Column("maxx", sa.Float(), nullable=True),
        sa.Column("maxy", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["grid_snapshots.id"],
            name=op.f("fk_grid_elements_snapshot_id_grid_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "idx", name=op.f("pk_grid_elements")),
        sa.UniqueConstraint(
            "snapshot_id", "element_id", name=op.f("uq_grid_elements_snapshot_id_element_id")
        ),
    )
    op.create_index(op.f("ix_grid_elements_bbox"), "grid_elements", ["snapshot_id", "minx", "miny"])
    _gist_index("ix_grid_elements_geom", "grid_elements", "geom")
    op.create_index(
        op.f("ix_grid_elements_snapshot_kind"), "grid_elements", ["snapshot_id", "kind"]
    )

    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("event_types", JSON_DOCUMENT, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_webhook_subscriptions_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("available_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.Column("dead_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_outbox_events_subscription_id_webhook_subscriptions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_events_event_id")),
    )
    op.create_index(
        op.f("ix_outbox_events_due"), "outbox_events", ["delivered_at", "dead_at", "available_at"]
    )
    op.create_index(op.f("ix_outbox_events_subscription_id"), "outbox_events", ["subscription_id"])

    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("reported_at", UtcDateTime(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("meter_id", sa.String(length=200), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("crs", sa.String(length=32), nullable=True),
        sa.Column("scope", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("contact", sa.String(length=300), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("geom", Geometry("POINT"), nullable=True),
        sa.Column("resolved_meter", sa.String(length=200), nullable=True),
        sa.Column("answer", JSON_DOCUMENT, nullable=True),
        sa.Column("inferred_at", UtcDateTime(), nullable=True),
        sa.Column("fault_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["fault_id"], ["faults.id"], name=op.f("fk_reports_fault_id_faults")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("report_id", name=op.f("uq_reports_report_id")),
    )
    op.create_index(op.f("ix_reports_fault_id"), "reports", ["fault_id"])
    _gist_index("ix_reports_geom", "reports", "geom")
    op.create_index(op.f("ix_reports_pending"), "reports", ["inferred_at", "id"])

    op.create_table(
        "work_orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("fault_id", sa.String(length=64), nullable=False),
        sa.Column("crew_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["crew_id"], ["crews.id"], name=op.f("fk_work_orders_crew_id_crews")
        ),
        sa.ForeignKeyConstraint(
            ["fault_id"], ["faults.id"], name=op.f("fk_work_orders_fault_id_faults")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["work_orders.id"], name=op.f("fk_work_orders_merged_into_work_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
    )
    op.create_index(op.f("ix_work_orders_crew_id"), "work_orders", ["crew_id"])
    op.create_index(op.f("ix_work_orders_fault_id"), "work_orders", ["fault_id"])
    op.create_index(op.f("ix_work_orders_state"), "work_orders", ["state"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox_events.id"],
            name=op.f("fk_delivery_attempts_outbox_id_outbox_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(op.f("ix_delivery_attempts_outbox_id"), "delivery_attempts", ["outbox_id"])

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fault_id", sa.String(length=64), nullable=True),
        sa.Column("work_order_id", sa.String(length=64), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("details", JSON_DOCUMENT, nullable=True),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fault_id"], ["faults.id"], name=op.f("fk_escalations_fault_id_faults")
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_escalations_work_order_id_work_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_fault_id"), "escalations", ["fault_id"])
    op.create_index(op.f("ix_escalations_open"), "escalations", ["resolved_at", "at"])
    op.create_index(op.f("ix_escalations_work_order_id"), "escalations", ["work_order_id"])

    op.create_table(
        "fault_members",
        sa.Column("fault_id", sa.String(length=64), nullable=False),
        sa.Column("report_pk", sa.Integer(), nullable=False),
        sa.Column("added_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fault_id"],
            ["faults.id"],
            name=op.f("fk_fault_members_fault_id_faults"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["report_pk"], ["reports.id"], name=op.f("fk_fault_members_report_pk_reports")
        ),
        sa.PrimaryKeyConstraint("fault_id", "report_pk", name=op.f("pk_fault_members")),
    )
    op.create_table(
        "tracking_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("report_pk", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_pk"],
            ["reports.id"],
            name=op.f("fk_tracking_tokens_report_pk_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_tracking_tokens")),
    )
    op.create_index(op.f("ix_tracking_tokens_report_pk"), "tracking_tokens", ["report_pk"])

    op.create_table(
        "work_order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_order_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("details", JSON_DOCUMENT, nullable=True),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_orders.id"],
            name=op.f("fk_work_order_events_work_order_id_work_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_events")),
        sa.UniqueConstraint(
            "work_order_id", "seq", name=op.f("uq_work_order_events_work_order_id_seq")
        ),
    )


def downgrade() -> None:
    op.drop_table("work_order_events")
    op.drop_table("tracking_tokens")
    op.drop_table("fault_members")
    op.drop_table("escalations")
    op.drop_table("delivery_attempts")
    op.drop_table("work_orders")
    op.drop_table("reports")
    op.drop_table("outbox_events")
    op.drop_table("webhook_subscriptions")
    op.drop_table("grid_elements")
    op.drop_table("grid_buses")
    op.drop_table("faults")
    op.drop_table("crew_positions")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("planned_outages")
    op.drop_table("idempotency_keys")
    op.drop_table("grid_snapshots")
    op.drop_table("crews")
