"""The statement a usage batch rates its records with, beside the catalogue copy's Core ones."""

from __future__ import annotations

from sqlalchemy import text

from mvno.common.db import Statement

USAGE_PRICES_OF_SUBSCRIPTIONS = text(
    "SELECT s.subscription_id, p.unit_of_measure, p.tax_included_amount, "
    "p.valid_from, p.valid_to FROM subscriptions s "
    "JOIN offering_price_copies p ON p.offering_id = s.offering_id "
    "WHERE s.subscription_id = ANY(:subscription_ids) AND p.price_type = 'usage'"
)

LAUNCHED_IN_COPY = Statement("SELECT offering_id FROM offering_copies WHERE status = 'launched'")
"""The offerings the copy holds as launched: what the local platform waits to see arrive."""
