"""The statements a usage batch consumes buckets with, in its transaction (named parameters)."""

from __future__ import annotations

from sqlalchemy import text

ACTIVE_BUCKETS_FOR_UPDATE = text(
    "SELECT * FROM buckets WHERE subscription_id = ANY(:subscription_ids) "
    "AND status = 'active' ORDER BY subscription_id, id FOR UPDATE"
)

SAVE_BUCKET = text(
    "UPDATE buckets SET remaining = :remaining, status = :status, "
    "low_notified = :low_notified WHERE id = :bucket_id"
)
