"""The bus's outbox and inbox in a service's database.

Shared by every service, as 0001 is.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from mvno.common.bus.tables import create_bus_tables_v1, drop_bus_tables_v1

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_bus_tables_v1()


def downgrade() -> None:
    drop_bus_tables_v1()
