"""A service-like schema for bus tests: the bus tables, a business table and an effects table."""

import sqlalchemy as sa
from alembic import op

from mvno.common.bus.tables import create_bus_tables_v1, drop_bus_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables_v1()
    op.create_table("thing", sa.Column("id", sa.Text, primary_key=True))
    # No unique constraint on purpose: a duplicated effect must be visible to the tests.
    op.create_table(
        "effect",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("effect")
    op.drop_table("thing")
    drop_bus_tables_v1()
