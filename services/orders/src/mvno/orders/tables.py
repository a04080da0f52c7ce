"""The orders service's tables; its Alembic migrations are written against this metadata."""

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from mvno.common.db import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

CATALOGUE_CHANGED = "orders_catalogue_changed"
"""NOTIFY channel raised at the commit of any change to the catalogue copy (migration 0006)."""

# --- the catalogue copy, kept from catalog events ------------------------------------------

offering_copies = Table(
    "offering_copies",
    metadata,
    Column("offering_id", String(64), primary_key=True),
    Column("version", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("status", String(16), nullable=False),  # launched | retired
    Column("channels", ARRAY(String(16)), nullable=False),
    Column("payment_type", String(16), nullable=False),
    Column("product_kind", String(32)),
    Column("sim_kinds", ARRAY(String(8)), nullable=False),
    Column("allowance", JSONB),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""What can be sold, as the catalog last announced it: ordering works while catalog is down."""

offering_price_copies = Table(
    "offering_price_copies",
    metadata,
    Column("price_id", String(64), primary_key=True),
    Column("offering_id", String(64), nullable=False, index=True),
    Column("price_type", String(16), nullable=False),
    Column("recurring_period", String(16)),
    Column("unit_of_measure", String(16)),
    Column("duty_free_amount", Numeric(12, 2), nullable=False),
    Column("tax_included_amount", Numeric(12, 2), nullable=False),
    Column("tax_rate", Numeric(5, 2), nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
)

# --- orders -----------------------------------------------------------------------------------

orders = Table(
    "orders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("client_id", Text, nullable=False),
    Column("external_id", Text),
    Column("state", String(16), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("failed_step", String(32)),
    Column("failure_reason", Text),
    Column("order_date", DateTime(timezone=True), nullable=False),
    Column("completion_date", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Personal data for RICA, sealed under the KMS key: field name -> ciphertext, and the data key.
    Column("personal_data", JSONB),
    Column("personal_data_key", LargeBinary),
    # The W3C traceparent of the request that placed the order: its saga's steps, whichever
    # worker takes them up from a timer, continue that trace.
    Column("trace_context", Text),
    Index("ix_orders_customer_id_order_date", "customer_id", "order_date"),
    Index("ix_orders_state_order_date", "state", "order_date"),
    Index("ix_orders_order_date_id", "order_date", "id"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", String(64), nullable=False),
    Column("item_id", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("change", String(16)),
    Column("offering_id", String(64)),
    Column("offering_name", Text),
    Column("sim_kind", String(8)),
    Column("subscription_id", String(64)),
    Column("port_in_msisdn", String(16)),
    Column("state", String(16), nullable=False),
    Column("prices", JSONB, nullable=False),
    # The provisioning saga's progress of the item: steps done and undone, partner ids.
    Column("progress", JSONB),
    PrimaryKeyConstraint("order_id", "item_id"),
    ForeignKeyConstraint(["order_id"], ["orders.id"]),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("client_id", Text, nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # in_flight | done
    Column("response_status", Integer),
    Column("response_body", JSONB),
    Column("order_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("client_id", "key"),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)
"""Idempotency-Key records per calling client, kept at least 24 hours."""

# --- product inventory (TMF637) --------------------------------------------------------------

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("offering_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # active | suspended | terminated
    Column("msisdn", String(16), nullable=False),
    Column("sim_kind", String(8), nullable=False),
    Column("iccid", String(22)),
    Column("payment_type", String(16), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("order_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The eSIM activation code opens the line: sealed like personal data.
    Column("secrets", JSONB),
    Column("secrets_key", LargeBinary),
    Column("partner_subscription_id", String(64)),  # the line's id at the network operator
)

# --- the provisioning engine ------------------------------------------------------------------

provisioning_timers = Table(
    "provisioning_timers",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
)
"""An order whose next step waits (a retry's backoff, or a poll for an awaited event)."""

billing_accounts = Table(
    "billing_accounts",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("billing_account_id", String(64), nullable=False),
    Column("order_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""billing-sync's answer to an activation, which the saga waits for."""
