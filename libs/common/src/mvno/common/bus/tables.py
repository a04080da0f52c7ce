"""The bus's tables in every service's own database: the outbox and the inbox.

Services create them from one of their migrations with :func:`create_bus_tables_v1`; a later change
gets a ``_v2`` function, so an applied migration never changes under a database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

NOTIFY_CHANNEL = "mvno_outbox"
BUS_TABLES = frozenset({"outbox", "inbox"})


def _outbox_columns_v1() -> list[sa.Column[Any]]:
    return [
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attributes", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    ]


def _inbox_columns_v1() -> list[sa.Column[Any]]:
    return [
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


bus_metadata = sa.MetaData()
outbox = sa.Table("outbox", bus_metadata, *_outbox_columns_v1())
inbox = sa.Table("inbox", bus_metadata, *_inbox_columns_v1())


def create_bus_tables_v1() -> None:
    """Alembic operations creating the outbox (with its NOTIFY trigger) and the inbox."""
    from alembic import op  # only migrations import Alembic, which slows a service's start-up

    op.create_table("outbox", *_outbox_columns_v1())
    # The relay's query: unpublished rows due now, oldest first.
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at", "seq"],
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_published_at",
        "outbox",
        ["published_at"],
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    # A queue table: every row is updated once and deleted later, so vacuum it early and often,
    # or the relay's index scan walks ever more dead entries.
    op.execute(
        "ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.0, "
        "autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0)"
    )
    # One NOTIFY per inserting statement wakes every relay as soon as the transaction commits.
    op.execute(
        f"""
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )
    op.create_table("inbox", *_inbox_columns_v1())


def drop_bus_tables_v1() -> None:
    from alembic import op

    op.drop_table("inbox")
    op.execute(
        "DROP TRIGGER IF EXISTS outbox_notify ON outbox; DROP FUNCTION IF EXISTS outbox_notify()"
    )
    op.drop_table("outbox")
