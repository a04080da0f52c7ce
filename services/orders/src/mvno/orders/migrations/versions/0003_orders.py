"""Orders, their items, Idempotency-Key records, the catalogue copy and the product inventory.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], unique=False
    )
    op.create_table(
        "offering_copies",
        sa.Column("offering_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channels", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("payment_type", sa.String(length=16), nullable=False),
        sa.Column("product_kind", sa.String(length=32), nullable=True),
        sa.Column("sim_kinds", postgresql.ARRAY(sa.String(length=8)), nullable=False),
        sa.Column("allowance", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("offering_id", name=op.f("pk_offering_copies")),
    )
    op.create_table(
        "offering_price_copies",
        sa.Column("price_id", sa.String(length=64), nullable=False),
        sa.Column("offering_id", sa.String(length=64), nullable=False),
        sa.Column("price_type", sa.String(length=16), nullable=False),
        sa.Column("recurring_period", sa.String(length=16), nullable=True),
        sa.Column("unit_of_measure", sa.String(length=16), nullable=True),
        sa.Column("duty_free_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("tax_included_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("tax_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("price_id", name=op.f("pk_offering_price_copies")),
    )
    op.create_index(
        op.f("ix_offering_price_copies_offering_id"),
        "offering_price_copies",
        ["offering_id"],
        unique=False,
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("failed_step", sa.String(length=32), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("order_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completion_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("personal_data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("personal_data_key", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index(
        "ix_orders_customer_id_order_date", "orders", ["customer_id", "order_date"], unique=False
    )
    op.create_index("ix_orders_order_date_id", "orders", ["order_date", "id"], unique=False)
    op.create_index("ix_orders_state_order_date", "orders", ["state", "order_date"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("offering_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("msisdn", sa.String(length=16), nullable=False),
        sa.Column("sim_kind", sa.String(length=8), nullable=False),
        sa.Column("iccid", sa.String(length=22), nullable=True),
        sa.Column("payment_type", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("secrets", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("secrets_key", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index(
        op.f("ix_subscriptions_customer_id"), "subscriptions", ["customer_id"], unique=False
    )
    op.create_table(
        "order_items",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=True),
        sa.Column("offering_id", sa.String(length=64), nullable=True),
        sa.Column("offering_name", sa.Text(), nullable=True),
        sa.Column("sim_kind", sa.String(length=8), nullable=True),
        sa.Column("subscription_id", sa.String(length=64), nullable=True),
        sa.Column("port_in_msisdn", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("prices", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_items_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", "item_id", name=op.f("pk_order_items")),
    )


def downgrade() -> None:
    op.drop_table("order_items")
    op.drop_index(op.f("ix_subscriptions_customer_id"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_orders_state_order_date", table_name="orders")
    op.drop_index("ix_orders_order_date_id", table_name="orders")
    op.drop_index("ix_orders_customer_id_order_date", table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_offering_price_copies_offering_id"), table_name="offering_price_copies")
    op.drop_table("offering_price_copies")
    op.drop_table("offering_copies")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
