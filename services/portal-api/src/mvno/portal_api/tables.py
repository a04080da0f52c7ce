"""The portal-api service's tables; its Alembic migrations are written against this metadata.

A read model kept from the bus, so the customer's hot screens answer from this database even when
orders or billing-sync are slow or down.
"""

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from mvno.common.db import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

CHANGE_CHANNEL = "portal_changed"
"""NOTIFY channel: the consumer's transaction announces what changed to every API replica."""

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("msisdn", String(20)),
    Column("offering_id", String(64)),
    Column("payment_type", String(16)),
    Column("sim_kind", String(8)),
    Column("status", String(16), nullable=False),  # active | suspended | terminated
    # The last lifecycle event applied (orders numbers them per subscription).
    Column("sequence", Integer, nullable=False),
    Column("order_id", String(64)),
    Column("activated_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_subscriptions_customer_id", "customer_id", "subscription_id"),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    # 0 when written from orders' answer to the placing; each event carries 1, 2, ...
    Column("sequence", Integer, nullable=False),
    Column("items", JSONB, nullable=False),
    Column("failed_step", String(32)),
    Column("failure_reason", Text),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_orders_customer_id_placed_at", "customer_id", "placed_at"),
)

balance_copies = Table(
    "balance_copies",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("buckets", JSONB, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
    # Set when an event says the balance moved: the copy is still shown, but refreshed first.
    Column("invalidated_at", DateTime(timezone=True)),
)

usage_copies = Table(
    "usage_copies",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("date_from", Date, primary_key=True),
    Column("date_to", Date, primary_key=True),
    Column("days", JSONB, nullable=False),
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)
"""billing-sync's last answer per line and period, shown (marked stale) while it is down."""

partner_status = Table(
    "partner_status",
    metadata,
    Column("probe", String(100), primary_key=True),
    Column("target", String(32), nullable=False),
    Column("failing", Boolean, nullable=False),
    Column("slow", Boolean, nullable=False),
    Column("reason", Text),
    # The time of the canary's event that set this row: an older event never overwrites it.
    Column("changed_at", DateTime(timezone=True), nullable=False),
)
"""Each canary probe's last announced outcome: the screens warn customers while a partner fails."""
