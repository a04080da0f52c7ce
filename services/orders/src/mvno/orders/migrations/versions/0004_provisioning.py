"""The provisioning engine: saga progress per item, retry timers, awaited billing accounts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("billing_account_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_billing_accounts")),
    )
    op.create_table(
        "provisioning_timers",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_provisioning_timers")),
    )
    op.create_index(
        op.f("ix_provisioning_timers_due_at"), "provisioning_timers", ["due_at"], unique=False
    )
    op.add_column(
        "order_items", sa.Column("progress", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "subscriptions", sa.Column("partner_subscription_id", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("subscriptions", "partner_subscription_id")
    op.drop_column("order_items", "progress")
    op.drop_index(op.f("ix_provisioning_timers_due_at"), table_name="provisioning_timers")
    op.drop_table("provisioning_timers")
    op.drop_table("billing_accounts")
