"""Account operations keep the trace context of the event that owed them.

The worker that makes the billing-platform call restores it as its parent, so the call is part
of the order's trace rather than a trace of its own.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE account_operations ADD COLUMN trace_context text")


def downgrade() -> None:
    op.execute("ALTER TABLE account_operations DROP COLUMN trace_context")
