"""The catalog service's tables; its Alembic migrations are written against this metadata."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from mvno.common.db import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

categories = Table(
    "categories",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("parent_id", String(64), ForeignKey("categories.id")),
    Column("version", Integer, nullable=False),
    Column("last_update", DateTime(timezone=True), nullable=False),
)

product_specifications = Table(
    "product_specifications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("brand", Text),
    Column("product_kind", String(32), nullable=False),
    Column("payment_type", String(16), nullable=False),
    Column("sim_kinds", ARRAY(String(8)), nullable=False),
    Column("data_mb", Integer, nullable=False),
    Column("voice_minutes", Integer, nullable=False),
    Column("sms", Integer, nullable=False),
    Column("validity_days", Integer),
    Column("version", Integer, nullable=False),
    Column("last_update", DateTime(timezone=True), nullable=False),
)

product_offerings = Table(
    "product_offerings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("category_id", String(64), ForeignKey("categories.id")),
    Column(
        "specification_id",
        String(64),
        ForeignKey("product_specifications.id"),
        nullable=False,
    ),
    Column("channels", ARRAY(String(16)), nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
    Column("bundled_offering_ids", ARRAY(String(64)), nullable=False),
    Column("lifecycle_status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_update", DateTime(timezone=True), nullable=False),
    Index("ix_product_offerings_lifecycle_status_name", "lifecycle_status", "name", "id"),
    Index("ix_product_offerings_channels", "channels", postgresql_using="gin"),
)

offering_prices = Table(
    "offering_prices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "offering_id", String(64), ForeignKey("product_offerings.id"), nullable=False, index=True
    ),
    Column("name", Text, nullable=False),
    Column("price_type", String(16), nullable=False),
    Column("recurring_period", String(16)),
    Column("unit_of_measure", String(16)),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("tax_rate", Numeric(5, 2), nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True)),
    CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_period"),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("client_id", Text),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("changes", JSONB, nullable=False),
    Column("request_id", Text),
    Index("ix_audit_records_entity", "entity_type", "entity_id", "id"),
)
"""Who changed what, when: one row per write, in the write's own transaction. Never updated."""

CHANGE_CHANNEL = "catalog_changed"
"""NOTIFY channel raised (by a trigger on audit_records) at the commit of every catalogue write."""
