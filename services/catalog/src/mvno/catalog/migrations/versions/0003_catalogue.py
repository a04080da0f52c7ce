"""The catalogue: categories, specifications, offerings, versioned prices and the audit trail.

A trigger on the audit trail raises NOTIFY catalog_changed at the commit of every write, so
every replica drops its cached reads at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_records")),
    )
    op.create_index(
        "ix_audit_records_entity", "audit_records", ["entity_type", "entity_id", "id"], unique=False
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_update", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["categories.id"], name=op.f("fk_categories_parent_id_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
    )
    op.create_table(
        "product_specifications",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("brand", sa.Text(), nullable=True),
        sa.Column("product_kind", sa.String(length=32), nullable=False),
        sa.Column("payment_type", sa.String(length=16), nullable=False),
        sa.Column("sim_kinds", postgresql.ARRAY(sa.String(length=8)), nullable=False),
        sa.Column("data_mb", sa.Integer(), nullable=False),
        sa.Column("voice_minutes", sa.Integer(), nullable=False),
        sa.Column("sms", sa.Integer(), nullable=False),
        sa.Column("validity_days", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_update", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_specifications")),
    )
    op.create_table(
        "product_offerings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category_id", sa.String(length=64), nullable=True),
        sa.Column("specification_id", sa.String(length=64), nullable=False),
        sa.Column("channels", postgresql.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bundled_offering_ids", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("lifecycle_status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_update", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_product_offerings_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["specification_id"],
            ["product_specifications.id"],
            name=op.f("fk_product_offerings_specification_id_product_specifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_offerings")),
    )
    op.create_index(
        "ix_product_offerings_channels",
        "product_offerings",
        ["channels"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_product_offerings_lifecycle_status_name",
        "product_offerings",
        ["lifecycle_status", "name", "id"],
        unique=False,
    )
    op.create_table(
        "offering_prices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("offering_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("price_type", sa.String(length=16), nullable=False),
        sa.Column("recurring_period", sa.String(length=16), nullable=True),
        sa.Column("unit_of_measure", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("tax_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_offering_prices_amount_not_negative")),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from",
            name=op.f("ck_offering_prices_valid_period"),
        ),
        sa.ForeignKeyConstraint(
            ["offering_id"],
            ["product_offerings.id"],
            name=op.f("fk_offering_prices_offering_id_product_offerings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offering_prices")),
    )
    op.create_index(
        op.f("ix_offering_prices_offering_id"), "offering_prices", ["offering_id"], unique=False
    )
    op.execute(
        """
        CREATE FUNCTION notify_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('catalog_changed', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_records_notify AFTER INSERT ON audit_records "
        "FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_records_notify ON audit_records")
    op.execute("DROP FUNCTION notify_catalog_changed()")
    op.drop_index(op.f("ix_offering_prices_offering_id"), table_name="offering_prices")
    op.drop_table("offering_prices")
    op.drop_index("ix_product_offerings_lifecycle_status_name", table_name="product_offerings")
    op.drop_index(
        "ix_product_offerings_channels", table_name="product_offerings", postgresql_using="gin"
    )
    op.drop_table("product_offerings")
    op.drop_table("product_specifications")
    op.drop_table("categories")
    op.drop_index("ix_audit_records_entity", table_name="audit_records")
    op.drop_table("audit_records")
