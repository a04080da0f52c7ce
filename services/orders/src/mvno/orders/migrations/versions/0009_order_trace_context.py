"""Orders keep the trace context of the request that placed them.

A step taken up from a timer (a retry after its backoff, a wait looked at again, a lease of a
dead worker run out) restores it as its parent, so an order's whole saga is one trace.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders ADD COLUMN trace_context text")


def downgrade() -> None:
    op.execute("ALTER TABLE orders DROP COLUMN trace_context")
