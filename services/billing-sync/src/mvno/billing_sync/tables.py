"""The billing-sync service's tables; its Alembic migrations are written against this metadata."""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from mvno.common.db import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# --- subscriptions and their billing accounts -----------------------------------------------

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("offering_id", String(64), nullable=False),
    Column("payment_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # active | suspended | terminated
    Column("sequence", Integer, nullable=False),
    Column("billing_account_id", String(64)),
    Column("billing_subscription_id", String(64)),
    Column("activated_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_subscriptions_msisdn", "msisdn"),
)
"""The platform's subscriptions as orders announced them; usage is matched to them by MSISDN."""

account_operations = Table(
    "account_operations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("subscription_id", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("operation", String(16), nullable=False),
    Column("order_id", String(64)),
    Column("offering_id", String(64)),
    Column("status", String(16), nullable=False),  # pending | done | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("trace_context", Text),  # W3C traceparent of the event that owed the call
    UniqueConstraint("subscription_id", "sequence", "operation"),
    Index("ix_account_operations_due", "next_attempt_at", postgresql_where="status = 'pending'"),
)
"""Calls owed to the billing platform, done in sequence order per subscription, with retries."""

# --- the catalogue copy (tariffs), kept from catalog events -----------------------------------

offering_copies = Table(
    "offering_copies",
    metadata,
    Column("offering_id", String(64), primary_key=True),
    Column("version", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("status", String(16), nullable=False),  # launched | retired
    Column("payment_type", String(16), nullable=False),
    Column("product_kind", String(32)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

offering_price_copies = Table(
    "offering_price_copies",
    metadata,
    Column("price_id", String(64), primary_key=True),
    Column("offering_id", String(64), nullable=False, index=True),
    Column("price_type", String(16), nullable=False),
    Column("recurring_period", String(16)),
    Column("unit_of_measure", String(16)),
    Column("tax_included_amount", Numeric(12, 2), nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
)

# --- balances and allowances (TMF654 buckets) --------------------------------------------------

buckets = Table(
    "buckets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subscription_id", String(64), nullable=False, index=True),
    Column("customer_id", String(64), nullable=False),
    Column("usage_type", String(8), nullable=False),  # data | voice | sms | airtime
    Column("units", String(8), nullable=False),  # MB | minute | SMS | ZAR
    Column("name", Text, nullable=False),
    Column("offering_id", String(64)),
    Column("order_id", String(64)),
    Column("order_item_id", String(64)),
    Column("initial_amount", Numeric(20, 6), nullable=False),
    Column("remaining", Numeric(20, 6), nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # active | depleted | expired
    Column("low_notified", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("order_id", "order_item_id", "usage_type"),
)
"""One bucket per kind of allowance a bundle gives, plus one airtime bucket per subscription."""

airtime_credits = Table(
    "airtime_credits",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("order_item_id", String(64), primary_key=True),
    Column("subscription_id", String(64), nullable=False),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("credited_at", DateTime(timezone=True), nullable=False),
)
"""Top-ups already credited: a redelivered purchase adds nothing twice."""

# --- usage ------------------------------------------------------------------------------------

usage_records = Table(
    "usage_records",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("subscription_id", String(64), nullable=False),
    Column("usage_type", String(8), nullable=False),  # data | voice | sms
    Column("quantity", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("batch_id", String(64), nullable=False),
)
"""Every usage record once, whatever source or file it came from (keyed by its record id)."""

usage_daily = Table(
    "usage_daily",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("usage_date", Date, primary_key=True),
    Column("data_bytes", BigInteger, nullable=False),
    Column("voice_seconds", BigInteger, nullable=False),
    Column("sms_count", BigInteger, nullable=False),
    Column("charge", Numeric(14, 2), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""Usage per subscription per UTC day, with that day's out-of-bundle charge (TMF635 view)."""

usage_batches = Table(
    "usage_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(16), nullable=False),  # usage_file | usage_api
    Column("bucket", Text),
    Column("object_key", Text),
    Column("etag", Text),
    Column("cursor_from", Text),
    Column("cursor_to", Text),
    Column("lines", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("bucket", "object_key", "etag"),
)
"""One ingested file or API page: a file seen again (same bucket, key and ETag) is skipped."""

usage_quarantine = Table(
    "usage_quarantine",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), nullable=False, index=True),
    Column("line_number", Integer, nullable=False),
    Column("record_id", Text),
    Column("reason", Text, nullable=False),
    Column("content", Text, nullable=False),
)
"""Records refused, with why and where (line number in the file, or position in the page)."""

usage_cursors = Table(
    "usage_cursors",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("findings", JSONB, nullable=False),
)


def rows(result: Any) -> list[dict[str, Any]]:
    """A SQLAlchemy result's rows as plain dicts."""
    return [dict(row._mapping) for row in result]
