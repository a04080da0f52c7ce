"""The usage ingestion's hand-written statements, named for what they do, with named parameters.

The ingestion of a usage batch has a throughput target: :mod:`.repository` sends these as
written here. Every other statement of billing-sync is SQLAlchemy Core in its repository, but for
the few the batch runs on buckets and prices (``buckets/statements.py``,
``catalogue/statements.py``).

- :class:`~mvno.common.db.Statement` constants run on the unit of work's asyncpg
  :attr:`~mvno.common.db.UnitOfWork.connection`: the set-based part (a staging table filled by
  ``COPY``, then a few statements over it), on the driver for speed.
- ``text()`` constants run through the unit of work's SQLAlchemy
  :attr:`~mvno.common.db.UnitOfWork.session` in the same transaction: what the batch reads and
  writes besides (its record, the daily totals, the buckets it consumes and the prices it rates
  at, the file lock and the usage API's cursor).
"""

from __future__ import annotations

from sqlalchemy import text

from mvno.common.db import Statement

# --- ingestion of a usage batch, on the asyncpg connection --------------------------------------

STAGING_TABLE = "usage_staging"
STAGING_COLUMNS = ("line_number", "record_id", "msisdn", "usage_type", "quantity", "started_at")
QUARANTINE_TABLE = "usage_quarantine"
QUARANTINE_COLUMNS = ("batch_id", "line_number", "record_id", "reason", "content")

# The batch's aggregation sorts or hashes every new record: in memory, not spilled to disk.
AGGREGATE_IN_MEMORY = Statement("SET LOCAL work_mem = '64MB'")

CREATE_STAGING = Statement(
    "CREATE TEMPORARY TABLE usage_staging (line_number integer, record_id text, msisdn text, "
    "usage_type text, quantity bigint, started_at timestamptz) ON COMMIT DROP"
)

ANALYZE_STAGING = Statement("ANALYZE usage_staging")

QUARANTINE_UNKNOWN_NUMBERS = Statement(
    "INSERT INTO usage_quarantine (batch_id, line_number, record_id, reason, content) "
    "SELECT :batch_id, s.line_number, s.record_id, 'unknown msisdn', s.msisdn "
    "FROM usage_staging s "
    "WHERE NOT EXISTS (SELECT 1 FROM subscriptions l WHERE l.msisdn = s.msisdn)"
)

# `lines`: the newest subscription holding each number, so a recycled number's usage goes to its
# new owner. Answers one row per (subscription, UTC day, kind) of the records new to the platform.
RECORD_STAGED_USAGE = Statement(
    """
WITH lines AS (
    SELECT DISTINCT ON (msisdn) msisdn, subscription_id FROM subscriptions
    ORDER BY msisdn, activated_at DESC
),
inserted AS (
    INSERT INTO usage_records (record_id, subscription_id, usage_type, quantity, started_at,
                               batch_id)
    SELECT s.record_id, l.subscription_id, s.usage_type, s.quantity, s.started_at, :batch_id
    FROM usage_staging s JOIN lines l ON l.msisdn = s.msisdn
    ON CONFLICT (record_id) DO NOTHING
    RETURNING subscription_id, usage_type, quantity, started_at
)
SELECT i.subscription_id, l.customer_id, (i.started_at AT TIME ZONE 'UTC')::date AS day,
       i.usage_type, sum(i.quantity)::bigint AS quantity, count(*) AS records,
       min(i.started_at) AS first, max(i.started_at) AS last
FROM inserted i JOIN subscriptions l ON l.subscription_id = i.subscription_id
GROUP BY i.subscription_id, l.customer_id, day, i.usage_type
"""
)

# --- usage batches, files and the usage API's cursor ---------------------------------------------

RECORD_BATCH = text(
    "INSERT INTO usage_batches (id, source, bucket, object_key, etag, cursor_from, "
    "cursor_to, lines, accepted, duplicates, quarantined, finished_at) VALUES (:id, "
    ":source, :bucket, :object_key, :etag, :cursor_from, :cursor_to, :lines, "
    ":accepted, :duplicates, :quarantined, now())"
)

ADD_DAILY_USAGE = text(
    "INSERT INTO usage_daily (subscription_id, usage_date, data_bytes, voice_seconds, "
    "sms_count, charge, updated_at) VALUES (:subscription_id, :usage_date, :data_bytes, "
    ":voice_seconds, :sms_count, :charge, now()) "
    "ON CONFLICT (subscription_id, usage_date) DO UPDATE SET "
    "data_bytes = usage_daily.data_bytes + excluded.data_bytes, "
    "voice_seconds = usage_daily.voice_seconds + excluded.voice_seconds, "
    "sms_count = usage_daily.sms_count + excluded.sms_count, "
    "charge = usage_daily.charge + excluded.charge, updated_at = now()"
)

LOCK_FILE_VERSION = text("SELECT pg_advisory_xact_lock(hashtextextended(:lock_key, 0))")

FILE_VERSION_INGESTED = text(
    "SELECT 1 FROM usage_batches WHERE bucket = :bucket AND object_key = :object_key "
    "AND etag = :etag"
)

START_CURSOR = text(
    "INSERT INTO usage_cursors (source, cursor, updated_at) "
    "VALUES (:source, '0', now()) ON CONFLICT DO NOTHING"
)

CURSOR_FOR_UPDATE = text("SELECT cursor FROM usage_cursors WHERE source = :source FOR UPDATE")

MOVE_CURSOR = text(
    "UPDATE usage_cursors SET cursor = :cursor, updated_at = now() WHERE source = :source"
)
