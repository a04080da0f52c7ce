"""Orders' outbox stops notifying at commit: its listening relay looks for rows instead.

PostgreSQL lets one notifying transaction commit at a time (each holds a database-wide lock from
its commit until its WAL is flushed, so they share no flush), and every order's intake and every
saga step with an event notified. The relay that holds the listening lock now looks for due rows
every coalescing window (``MVNO_OUTBOX_COALESCE_SECONDS``, 100 ms), as long as it waited after
each wake-up before (``mvno.common.bus.relay``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")


def downgrade() -> None:
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )
