"""Baseline of a service's database: the schema starts here.

Shared by every service: each service's Alembic configuration lists this folder beside its own
versions (mvno.common.db.alembic_config), and its first revision of its own revises 0002.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
