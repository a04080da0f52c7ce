"""The hub's tables: channels' callback registrations and the webhooks owed to them.

``webhook_deliveries`` is both the delivery queue and the delivery log: a row is written in the
transaction of the order change it announces, and the worker updates it after every attempt.
"""

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from mvno.orders.tables import metadata

hub_subscriptions = Table(
    "hub_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner_client_id", Text, nullable=False),
    Column("callback", Text, nullable=False),
    Column("query", Text),
    # HMAC needs the secret itself, so it cannot be stored hashed the way a password is.
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "subscription_id",
        String(36),
        # Unregistering a hub drops what it was still owed, and its log with it.
        ForeignKey("hub_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", String(255), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_status_code", SmallInteger),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    # One webhook per event and hub, however often the event is handled.
    UniqueConstraint(
        "subscription_id", "event_id", name="uq_webhook_deliveries_subscription_id_event_id"
    ),
    # The worker's claim: pending rows that are due, soonest first.
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
    # A hub's delivery log, newest first.
    Index("ix_webhook_deliveries_log", "subscription_id", "created_at", "id"),
)
