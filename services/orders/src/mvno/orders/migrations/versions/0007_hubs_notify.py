"""Hub registrations announce their changes: ``NOTIFY orders_hubs_changed`` at commit.

Order intake keeps each client's hubs in memory per replica and drops them when one changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION orders_hubs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('orders_hubs_changed', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER hub_subscriptions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON hub_subscriptions FOR EACH STATEMENT EXECUTE FUNCTION orders_hubs_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER hub_subscriptions_changed ON hub_subscriptions")
    op.execute("DROP FUNCTION orders_hubs_changed()")
