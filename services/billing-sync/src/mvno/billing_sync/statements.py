"""Every hand-written statement billing-sync runs, named for what it does, with named parameters.

Two kinds, kept apart below:

- :class:`~mvno.common.db.Statement` constants run on the unit of work's asyncpg
  :attr:`~mvno.common.db.UnitOfWork.connection`: the set-based ingestion of a usage batch (a
  staging table filled by ``COPY``, then a few statements over it), kept on the driver for speed.
- ``text()`` constants run through the unit of work's SQLAlchemy
  :attr:`~mvno.common.db.UnitOfWork.session`, as they always have (same statements, same round
  trips); the repositories in :mod:`mvno.billing_sync.repository` are their only callers.
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

COUNT_USAGE_DAYS = text(
    "SELECT count(*) FROM usage_daily WHERE subscription_id = :subscription_id "
    "AND (CAST(:since AS date) IS NULL OR usage_date >= :since) "
    "AND (CAST(:until AS date) IS NULL OR usage_date <= :until)"
)

USAGE_DAYS_PAGE = text(
    "SELECT * FROM usage_daily WHERE subscription_id = :subscription_id "
    "AND (CAST(:since AS date) IS NULL OR usage_date >= :since) "
    "AND (CAST(:until AS date) IS NULL OR usage_date <= :until) "
    "ORDER BY usage_date DESC OFFSET :offset LIMIT :limit"
)

# --- subscriptions and account operations --------------------------------------------------------

ADD_SUBSCRIPTION = text(
    "INSERT INTO subscriptions (subscription_id, customer_id, msisdn, offering_id, "
    "payment_type, status, sequence, activated_at, updated_at) VALUES (:subscription_id, "
    ":customer_id, :msisdn, :offering_id, :payment_type, 'active', :sequence, :at, :at) "
    "ON CONFLICT DO NOTHING"
)

QUEUE_OPERATION = text(
    "INSERT INTO account_operations (subscription_id, sequence, operation, order_id, "
    "offering_id, status, next_attempt_at, created_at) VALUES (:subscription_id, :sequence, "
    ":operation, :order_id, :offering_id, 'pending', now(), :at) ON CONFLICT DO NOTHING"
)

LOCK_SUBSCRIPTION_SEQUENCE = text(
    "SELECT sequence FROM subscriptions WHERE subscription_id = :subscription_id FOR UPDATE"
)

OPERATIONS_OF_SUBSCRIPTION = text(
    "SELECT sequence, operation, offering_id FROM account_operations "
    "WHERE subscription_id = :subscription_id ORDER BY sequence"
)

SET_SUBSCRIPTION_STATE = text(
    "UPDATE subscriptions SET status = :status, sequence = :sequence, "
    "offering_id = COALESCE(:offering_id, offering_id), updated_at = now() "
    "WHERE subscription_id = :subscription_id"
)

# Each the earliest unfinished operation of its subscription, so a line's calls run in order.
TAKE_DUE_OPERATIONS = text(
    "SELECT o.* FROM account_operations o WHERE o.status = 'pending' "
    "AND o.next_attempt_at <= now() AND NOT EXISTS (SELECT 1 FROM account_operations p "
    "WHERE p.subscription_id = o.subscription_id AND p.status = 'pending' "
    "AND p.sequence < o.sequence) ORDER BY o.next_attempt_at LIMIT :limit "
    "FOR UPDATE SKIP LOCKED"
)

SUBSCRIPTION = text("SELECT * FROM subscriptions WHERE subscription_id = :subscription_id")

CREATE_FAILED = text(
    "SELECT 1 FROM account_operations WHERE subscription_id = :subscription_id "
    "AND operation = 'create' AND status = 'failed'"
)

FINISH_OPERATION = text(
    "UPDATE account_operations SET status = :status, last_error = :error, "
    "attempts = attempts + 1, finished_at = now() WHERE id = :operation_id"
)

RETRY_OPERATION = text(
    "UPDATE account_operations SET attempts = attempts + 1, last_error = :error, "
    "next_attempt_at = now() + make_interval(secs => :delay) WHERE id = :operation_id"
)

POSTPONE_OPERATION = text(
    "UPDATE account_operations SET next_attempt_at = now() + make_interval(secs => :delay) "
    "WHERE id = :operation_id"
)

RECORD_BILLING = text(
    "UPDATE subscriptions SET billing_account_id = :billing_account_id, "
    "billing_subscription_id = :billing_subscription_id, updated_at = now() "
    "WHERE subscription_id = :subscription_id"
)

LOCAL_LINES = text(
    "SELECT subscription_id, customer_id, msisdn, offering_id, status FROM subscriptions"
)

SUBSCRIPTIONS_WITH_PENDING_OPERATIONS = text(
    "SELECT DISTINCT subscription_id FROM account_operations WHERE status = 'pending'"
)

RECORD_RECONCILIATION = text(
    "INSERT INTO reconciliation_runs (id, started_at, finished_at, findings) "
    "VALUES (:run_id, :started_at, now(), CAST(:findings AS jsonb))"
)

# --- the catalogue copy --------------------------------------------------------------------------

PUT_OFFERING = text(
    "INSERT INTO offering_copies (offering_id, version, name, status, payment_type, "
    "product_kind, updated_at) VALUES (:offering_id, :version, :name, 'launched', "
    ":payment_type, :product_kind, :at) "
    "ON CONFLICT (offering_id) DO UPDATE SET version = excluded.version, "
    "name = excluded.name, status = 'launched', payment_type = excluded.payment_type, "
    "product_kind = excluded.product_kind, updated_at = excluded.updated_at "
    "WHERE offering_copies.status <> 'retired'"
)

RETIRE_OFFERING = text(
    "INSERT INTO offering_copies (offering_id, version, name, status, payment_type, "
    "updated_at) VALUES (:offering_id, :version, '', 'retired', 'prepaid', :at) "
    "ON CONFLICT (offering_id) DO UPDATE SET status = 'retired', updated_at = :at"
)

PUT_PRICE = text(
    "INSERT INTO offering_price_copies (price_id, offering_id, price_type, "
    "recurring_period, unit_of_measure, tax_included_amount, valid_from, valid_to) "
    "VALUES (:price_id, :offering_id, :price_type, :recurring_period, :unit_of_measure, "
    ":amount, :valid_from, :valid_to) ON CONFLICT (price_id) DO UPDATE SET "
    "tax_included_amount = excluded.tax_included_amount, valid_to = excluded.valid_to"
)

CLOSE_PRICE = text(
    "UPDATE offering_price_copies SET valid_to = :at WHERE price_id = :price_id "
    "AND (valid_to IS NULL OR valid_to > :at)"
)

MONTHLY_CHARGE = text(
    "SELECT tax_included_amount FROM offering_price_copies WHERE offering_id = :offering_id "
    "AND price_type = 'recurring' AND valid_from <= now() "
    "AND (valid_to IS NULL OR valid_to > now()) ORDER BY valid_from DESC LIMIT 1"
)

USAGE_PRICES_OF_SUBSCRIPTIONS = text(
    "SELECT s.subscription_id, p.unit_of_measure, p.tax_included_amount, "
    "p.valid_from, p.valid_to FROM subscriptions s "
    "JOIN offering_price_copies p ON p.offering_id = s.offering_id "
    "WHERE s.subscription_id = ANY(:subscription_ids) AND p.price_type = 'usage'"
)

# --- buckets and the airtime balance -------------------------------------------------------------

OPEN_BUCKET = text(
    "INSERT INTO buckets (id, subscription_id, customer_id, usage_type, units, name, "
    "offering_id, order_id, order_item_id, initial_amount, remaining, valid_from, "
    "valid_to, status, created_at) VALUES (:bucket_id, :subscription_id, :customer_id, "
    ":usage_type, :units, :name, :offering_id, :order_id, :order_item_id, :amount, :amount, "
    ":valid_from, :valid_to, 'active', :at) ON CONFLICT DO NOTHING"
)

RECORD_AIRTIME_CREDIT = text(
    "INSERT INTO airtime_credits (order_id, order_item_id, subscription_id, amount, "
    "credited_at) VALUES (:order_id, :order_item_id, :subscription_id, :amount, :at) "
    "ON CONFLICT DO NOTHING RETURNING order_id"
)

# A top-up that takes the balance back above the threshold re-arms low_notified, so the next
# crossing is announced again.
ADD_AIRTIME = text(
    "INSERT INTO buckets (id, subscription_id, customer_id, usage_type, units, name, "
    "initial_amount, remaining, valid_from, status, created_at) VALUES (:bucket_id, "
    ":subscription_id, :customer_id, 'airtime', 'ZAR', 'Airtime', :amount, :amount, :at, "
    "'active', :at) ON CONFLICT (id) DO UPDATE "
    "SET initial_amount = buckets.initial_amount + :amount, "
    "remaining = buckets.remaining + :amount, status = 'active', "
    "low_notified = buckets.low_notified AND buckets.remaining + :amount < :low_threshold"
)

ACTIVE_BUCKETS_FOR_UPDATE = text(
    "SELECT * FROM buckets WHERE subscription_id = ANY(:subscription_ids) "
    "AND status = 'active' ORDER BY subscription_id, id FOR UPDATE"
)

SAVE_BUCKET = text(
    "UPDATE buckets SET remaining = :remaining, status = :status, "
    "low_notified = :low_notified WHERE id = :bucket_id"
)

EXPIRE_BUCKETS = text(
    "UPDATE buckets SET status = 'expired' WHERE id IN (SELECT id FROM buckets "
    "WHERE status IN ('active', 'depleted') AND valid_to <= :at LIMIT :limit "
    "FOR UPDATE SKIP LOCKED) RETURNING *"
)

COUNT_BUCKETS = text("SELECT count(*) FROM buckets WHERE subscription_id = :subscription_id")

BUCKETS_PAGE = text(
    "SELECT * FROM buckets WHERE subscription_id = :subscription_id "
    "ORDER BY usage_type = 'airtime' DESC, valid_to NULLS FIRST, created_at, id "
    "OFFSET :offset LIMIT :limit"
)
