"""Billing-sync's own state: subscriptions and account operations, the catalogue copy, buckets,
usage records, daily usage, ingestion batches, quarantine, cursors and reconciliation runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENTS = (
    """
CREATE TABLE account_operations (
    id BIGSERIAL NOT NULL,
    subscription_id VARCHAR(64) NOT NULL,
    sequence INTEGER NOT NULL,
    operation VARCHAR(16) NOT NULL,
    order_id VARCHAR(64),
    offering_id VARCHAR(64),
    status VARCHAR(16) NOT NULL,
    attempts INTEGER DEFAULT '0' NOT NULL,
    next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_account_operations PRIMARY KEY (id),
    CONSTRAINT uq_account_operations_subscription_id UNIQUE (subscription_id, sequence, operation)
)
""",
    """
CREATE INDEX ix_account_operations_due ON account_operations (next_attempt_at) WHERE status = 'pending'
""",
    """
CREATE TABLE airtime_credits (
    order_id VARCHAR(64) NOT NULL,
    order_item_id VARCHAR(64) NOT NULL,
    subscription_id VARCHAR(64) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    credited_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_airtime_credits PRIMARY KEY (order_id, order_item_id)
)
""",
    """
CREATE TABLE buckets (
    id VARCHAR(64) NOT NULL,
    subscription_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    usage_type VARCHAR(8) NOT NULL,
    units VARCHAR(8) NOT NULL,
    name TEXT NOT NULL,
    offering_id VARCHAR(64),
    order_id VARCHAR(64),
    order_item_id VARCHAR(64),
    initial_amount NUMERIC(20, 6) NOT NULL,
    remaining NUMERIC(20, 6) NOT NULL,
    valid_from TIMESTAMP WITH TIME ZONE NOT NULL,
    valid_to TIMESTAMP WITH TIME ZONE,
    status VARCHAR(16) NOT NULL,
    low_notified BOOLEAN DEFAULT 'false' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_buckets PRIMARY KEY (id),
    CONSTRAINT uq_buckets_order_id UNIQUE (order_id, order_item_id, usage_type)
)
""",
    """
CREATE INDEX ix_buckets_subscription_id ON buckets (subscription_id)
""",
    """
CREATE TABLE offering_copies (
    offering_id VARCHAR(64) NOT NULL,
    version VARCHAR(32) NOT NULL,
    name TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    payment_type VARCHAR(16) NOT NULL,
    product_kind VARCHAR(32),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_offering_copies PRIMARY KEY (offering_id)
)
""",
    """
CREATE TABLE offering_price_copies (
    price_id VARCHAR(64) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    price_type VARCHAR(16) NOT NULL,
    recurring_period VARCHAR(16),
    unit_of_measure VARCHAR(16),
    tax_included_amount NUMERIC(12, 2) NOT NULL,
    valid_from TIMESTAMP WITH TIME ZONE NOT NULL,
    valid_to TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_offering_price_copies PRIMARY KEY (price_id)
)
""",
    """
CREATE INDEX ix_offering_price_copies_offering_id ON offering_price_copies (offering_id)
""",
    """
CREATE TABLE reconciliation_runs (
    id VARCHAR(64) NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE NOT NULL,
    findings JSONB NOT NULL,
    CONSTRAINT pk_reconciliation_runs PRIMARY KEY (id)
)
""",
    """
CREATE TABLE subscriptions (
    subscription_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    msisdn VARCHAR(16) NOT NULL,
    offering_id VARCHAR(64) NOT NULL,
    payment_type VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL,
    sequence INTEGER NOT NULL,
    billing_account_id VARCHAR(64),
    billing_subscription_id VARCHAR(64),
    activated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_subscriptions PRIMARY KEY (subscription_id)
)
""",
    """
CREATE INDEX ix_subscriptions_msisdn ON subscriptions (msisdn)
""",
    """
CREATE TABLE usage_batches (
    id VARCHAR(64) NOT NULL,
    source VARCHAR(16) NOT NULL,
    bucket TEXT,
    object_key TEXT,
    etag TEXT,
    cursor_from TEXT,
    cursor_to TEXT,
    lines INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_usage_batches PRIMARY KEY (id),
    CONSTRAINT uq_usage_batches_bucket UNIQUE (bucket, object_key, etag)
)
""",
    """
CREATE TABLE usage_cursors (
    source VARCHAR(32) NOT NULL,
    cursor TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_usage_cursors PRIMARY KEY (source)
)
""",
    """
CREATE TABLE usage_daily (
    subscription_id VARCHAR(64) NOT NULL,
    usage_date DATE NOT NULL,
    data_bytes BIGINT NOT NULL,
    voice_seconds BIGINT NOT NULL,
    sms_count BIGINT NOT NULL,
    charge NUMERIC(14, 2) NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_usage_daily PRIMARY KEY (subscription_id, usage_date)
)
""",
    """
CREATE TABLE usage_quarantine (
    id BIGSERIAL NOT NULL,
    batch_id VARCHAR(64) NOT NULL,
    line_number INTEGER NOT NULL,
    record_id TEXT,
    reason TEXT NOT NULL,
    content TEXT NOT NULL,
    CONSTRAINT pk_usage_quarantine PRIMARY KEY (id)
)
""",
    """
CREATE INDEX ix_usage_quarantine_batch_id ON usage_quarantine (batch_id)
""",
    """
CREATE TABLE usage_records (
    record_id VARCHAR(64) NOT NULL,
    subscription_id VARCHAR(64) NOT NULL,
    usage_type VARCHAR(8) NOT NULL,
    quantity BIGINT NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    batch_id VARCHAR(64) NOT NULL,
    CONSTRAINT pk_usage_records PRIMARY KEY (record_id)
)
""",
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE usage_records")
    op.execute("DROP TABLE usage_quarantine")
    op.execute("DROP TABLE usage_daily")
    op.execute("DROP TABLE usage_cursors")
    op.execute("DROP TABLE usage_batches")
    op.execute("DROP TABLE subscriptions")
    op.execute("DROP TABLE reconciliation_runs")
    op.execute("DROP TABLE offering_price_copies")
    op.execute("DROP TABLE offering_copies")
    op.execute("DROP TABLE buckets")
    op.execute("DROP TABLE airtime_credits")
    op.execute("DROP TABLE account_operations")
