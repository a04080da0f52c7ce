"""Every statement the read model runs, hand-written: the screens and the consumer's events run
them on each view and each event, and the upserts say in one statement which event wins.

Run on a unit of work's connection (``uow.portal``), or, for the "my lines" read, on the
portal's :class:`~mvno.common.db.StatementPool`. ``jsonb`` parameters are JSON text
(``CAST(:items AS jsonb)``).
"""

from mvno.common.db import Statement

# --- lines ---------------------------------------------------------------------------------------

LINES_OF_CUSTOMER = Statement(
    "SELECT s.subscription_id, s.msisdn, s.offering_id, s.payment_type, s.sim_kind, s.status, "
    "s.activated_at, b.buckets, b.fetched_at, b.invalidated_at "
    "FROM subscriptions s LEFT JOIN balance_copies b USING (subscription_id) "
    "WHERE s.customer_id = :customer_id ORDER BY s.activated_at NULLS LAST, s.subscription_id"
)
"""The "my lines" screen: only the columns it shows or needs to judge the balance copies."""

LINE_OF_CUSTOMER = Statement(
    "SELECT s.subscription_id, s.customer_id, s.msisdn, s.offering_id, s.payment_type, "
    "s.sim_kind, s.status, s.order_id, s.activated_at, s.updated_at, "
    "b.buckets, b.fetched_at, b.invalidated_at "
    "FROM subscriptions s LEFT JOIN balance_copies b USING (subscription_id) "
    "WHERE s.customer_id = :customer_id AND s.subscription_id = :subscription_id"
)

APPLY_SUBSCRIPTION_EVENT = Statement(
    "INSERT INTO subscriptions AS s (subscription_id, customer_id, msisdn, offering_id, "
    "payment_type, sim_kind, status, sequence, order_id, activated_at, updated_at) "
    "VALUES (:subscription_id, :customer_id, :msisdn, :offering_id, :payment_type, :sim_kind, "
    ":status, :sequence, :order_id, :activated_at, :updated_at) "
    "ON CONFLICT (subscription_id) DO UPDATE SET "
    "msisdn = COALESCE(excluded.msisdn, s.msisdn), "
    "sim_kind = COALESCE(excluded.sim_kind, s.sim_kind), "
    "activated_at = COALESCE(excluded.activated_at, s.activated_at), "
    "order_id = COALESCE(s.order_id, excluded.order_id), "
    "offering_id = CASE WHEN excluded.offering_id IS NOT NULL "
    "  AND (excluded.sequence > s.sequence OR s.offering_id IS NULL) "
    "  THEN excluded.offering_id ELSE s.offering_id END, "
    "payment_type = CASE WHEN excluded.payment_type IS NOT NULL "
    "  AND (excluded.sequence > s.sequence OR s.payment_type IS NULL) "
    "  THEN excluded.payment_type ELSE s.payment_type END, "
    "status = CASE WHEN excluded.sequence > s.sequence THEN excluded.status ELSE s.status END, "
    "sequence = GREATEST(s.sequence, excluded.sequence), "
    "updated_at = GREATEST(s.updated_at, excluded.updated_at) "
    "RETURNING subscription_id"
)
"""A lifecycle event's status applies only when it is newer than the last one applied (the bus
reorders); what only ``activated`` and ``tariff_changed`` carry fills in whenever it comes."""

# --- orders --------------------------------------------------------------------------------------

APPLY_ORDER = Statement(
    "INSERT INTO orders AS o (order_id, customer_id, channel, state, sequence, items, "
    "failed_step, failure_reason, placed_at, updated_at) "
    "VALUES (:order_id, :customer_id, :channel, :state, :sequence, CAST(:items AS jsonb), "
    ":failed_step, :failure_reason, :placed_at, :updated_at) "
    "ON CONFLICT (order_id) DO UPDATE SET "
    "state = excluded.state, sequence = excluded.sequence, items = excluded.items, "
    "failed_step = excluded.failed_step, failure_reason = excluded.failure_reason, "
    "placed_at = LEAST(o.placed_at, excluded.placed_at), updated_at = excluded.updated_at "
    "WHERE excluded.sequence > o.sequence "
    "RETURNING order_id"
)
"""Written unless a newer state of the order is known: a row comes back only when written."""

ORDERS_OF_CUSTOMER = Statement(
    "SELECT order_id, customer_id, channel, state, sequence, items, failed_step, "
    "failure_reason, placed_at, updated_at, count(*) OVER () AS total FROM orders "
    "WHERE customer_id = :customer_id ORDER BY placed_at DESC, order_id DESC "
    "OFFSET :offset LIMIT :limit"
)
"""A page of the customer's orders, newest first, each row with the customer's total."""

ORDER_OF_CUSTOMER = Statement(
    "SELECT order_id, customer_id, channel, state, sequence, items, failed_step, "
    "failure_reason, placed_at, updated_at FROM orders "
    "WHERE customer_id = :customer_id AND order_id = :order_id"
)

LOCK_ORDER = Statement(
    "SELECT order_id, customer_id, channel, state, sequence, items, failed_step, "
    "failure_reason, placed_at, updated_at FROM orders WHERE order_id = :order_id FOR UPDATE"
)
"""The order as known, locked until the transaction ends (events and the placing's answer race)."""

REPLACE_ORDER_ITEMS = Statement(
    "UPDATE orders SET items = CAST(:items AS jsonb) WHERE order_id = :order_id"
)

# --- copies of billing-sync's answers --------------------------------------------------------------

PUT_BALANCE_COPY = Statement(
    "INSERT INTO balance_copies (subscription_id, buckets, fetched_at) "
    "VALUES (:subscription_id, CAST(:buckets AS jsonb), :fetched_at) "
    "ON CONFLICT (subscription_id) DO UPDATE SET buckets = excluded.buckets, "
    "fetched_at = excluded.fetched_at "
    "WHERE balance_copies.fetched_at <= excluded.fetched_at"
)
"""Kept unless a copy fetched later is there already."""

INVALIDATE_BALANCE_COPIES = Statement(
    "UPDATE balance_copies SET invalidated_at = :at WHERE subscription_id = ANY(:subscription_ids)"
)

PUT_USAGE_COPY = Statement(
    "INSERT INTO usage_copies (subscription_id, date_from, date_to, days, fetched_at) "
    "VALUES (:subscription_id, :date_from, :date_to, CAST(:days AS jsonb), :fetched_at) "
    "ON CONFLICT (subscription_id, date_from, date_to) DO UPDATE SET days = excluded.days, "
    "fetched_at = excluded.fetched_at"
)

USAGE_COPY = Statement(
    "SELECT days, fetched_at FROM usage_copies WHERE subscription_id = :subscription_id "
    "AND date_from = :date_from AND date_to = :date_to"
)

# --- partners, as the canary sees them --------------------------------------------------------------

APPLY_PROBE_TURN = Statement(
    "INSERT INTO partner_status AS p (probe, target, failing, slow, reason, changed_at) "
    "VALUES (:probe, :target, :failing, :slow, :reason, :changed_at) "
    "ON CONFLICT (probe) DO UPDATE SET target = excluded.target, failing = excluded.failing, "
    "slow = excluded.slow, reason = excluded.reason, changed_at = excluded.changed_at "
    "WHERE p.changed_at <= excluded.changed_at"
)
"""The canary's turn for one probe, unless a later one was applied already (SQS may reorder)."""

FAILING_PROBES = Statement(
    "SELECT probe, target, slow, changed_at FROM partner_status WHERE failing "
    "ORDER BY target, probe"
)

# --- telling the API replicas ----------------------------------------------------------------------

ANNOUNCE = Statement("SELECT pg_notify(:channel, :payload)")
"""Delivered to every listening replica when the transaction commits, never before."""
