"""The intake's hand-written SQL, sent on the :class:`~mvno.common.db.StatementPool`."""

from mvno.common.db import OUTBOX_RECORDSET, Statement

PLACE_ORDER_ONCE = Statement(f"""
    WITH lock AS (
        SELECT pg_try_advisory_xact_lock(hashtextextended(:client_id || chr(31) || :key, 0))
            AS held
    ),
    earlier AS (
        SELECT request_hash, response_status, response_body FROM idempotency_keys
        WHERE client_id = :client_id AND key = :key
    ),
    claimed AS (
        INSERT INTO idempotency_keys (client_id, key, request_hash, state, response_status,
                                      response_body, order_id, created_at, expires_at)
        SELECT :client_id, :key, :request_hash, 'done', 201, CAST(:answer AS jsonb), :order_id,
               :order_date, :expires_at
        FROM lock WHERE lock.held AND NOT EXISTS (SELECT 1 FROM earlier)
        ON CONFLICT DO NOTHING
        RETURNING order_id
    ),
    placed AS (
        INSERT INTO orders (id, customer_id, channel, client_id, external_id, state, sequence,
                            order_date, updated_at, personal_data, personal_data_key,
                            trace_context)
        SELECT order_id, :customer_id, :channel, :client_id, :external_id, :state, :sequence,
               :order_date, :order_date, CAST(:personal_data AS jsonb), :personal_data_key,
               :trace_context
        FROM claimed
        RETURNING id
    ),
    items AS (
        INSERT INTO order_items (order_id, item_id, action, change, offering_id, offering_name,
                                 sim_kind, subscription_id, port_in_msisdn, state, prices)
        SELECT placed.id, i.item_id, i.action, i.change, i.offering_id, i.offering_name,
               i.sim_kind, i.subscription_id, i.port_in_msisdn, i.state, i.prices
        FROM placed, jsonb_to_recordset(CAST(:items AS jsonb)) AS i(
            item_id text, action text, change text, offering_id text, offering_name text,
            sim_kind text, subscription_id text, port_in_msisdn text, state text, prices jsonb)
        RETURNING 1
    ),
    events AS (
        INSERT INTO outbox (event_id, event_type, body, attributes)
        SELECT outbox_row.* FROM placed, {OUTBOX_RECORDSET}
        RETURNING 1
    ),
    fallback AS (
        INSERT INTO provisioning_timers (order_id, due_at)
        SELECT id, :start_by FROM placed
        RETURNING 1
    ),
    owed AS (
        INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, payload)
        SELECT d.id, d.subscription_id, d.event_id, d.event_type, d.payload
        FROM placed, jsonb_to_recordset(CAST(:webhooks AS jsonb)) AS d(
            id text, subscription_id text, event_id text, event_type text, payload jsonb)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT held FROM lock) AS held,
           (SELECT count(*) FROM items) AS items,
           (SELECT count(*) FROM events) AS events,
           (SELECT count(*) FROM owed) AS owed,
           (SELECT count(*) FROM fallback) AS fallback,
           earlier.request_hash, earlier.response_status, earlier.response_body
    FROM (SELECT 1) AS one LEFT JOIN earlier ON true
""")  # noqa: S608 - OUTBOX_RECORDSET is a constant, every value is a bound parameter
"""Place an order once per (client, key), in one statement that is its own transaction.

A transaction-scoped advisory lock on the key tells a concurrent duplicate that the first is
still in flight (``held`` false: 409); a key used before answers what it answered then;
otherwise the key (with the answer), the order, its items, its events (the outbox) and the
webhooks it owes are written together, with a timer (``start_by``) that hands the order to a
worker again should its first work item never be handled. Nothing is written unless all of it
is, and the key is only ever seen with its answer."""

ANSWER_OF_KEY = Statement("""
    SELECT request_hash, response_status, response_body FROM idempotency_keys
    WHERE client_id = :client_id AND key = :key
""")
"""What the request that used a key before answered."""
