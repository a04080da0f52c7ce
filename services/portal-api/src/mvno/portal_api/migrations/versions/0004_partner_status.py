"""Each canary probe's last announced outcome, for the notices on the customer's screens.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner_status",
        sa.Column("probe", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.Column("slow", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("probe", name=op.f("pk_partner_status")),
    )


def downgrade() -> None:
    op.drop_table("partner_status")
