"""The orders' hand-written SQL, sent on asyncpg (:class:`mvno.common.db.Statement`).

A step of the provisioning saga loads an order and saves it once each: one statement each way,
the items and the timer with the order, so that a step's transaction stays short.
"""

from mvno.common.db import Statement

_ORDER_WITH_ITEMS = """
SELECT o.id, o.customer_id, o.channel, o.client_id, o.state, o.sequence, o.order_date,
       o.xmin AS version, o.updated_at, o.personal_data::text AS personal_data,
       o.personal_data_key, o.external_id, o.completion_date, o.failed_step, o.failure_reason,
       (SELECT coalesce(json_agg(json_build_object(
                   'item_id', i.item_id, 'action', i.action, 'change', i.change,
                   'offering_id', i.offering_id, 'offering_name', i.offering_name,
                   'sim_kind', i.sim_kind, 'subscription_id', i.subscription_id,
                   'port_in_msisdn', i.port_in_msisdn, 'state', i.state, 'prices', i.prices,
                   'progress', i.progress) ORDER BY i.item_id), '[]'::json)
          FROM order_items i WHERE i.order_id = o.id) AS items
  FROM orders o WHERE o.id = :order_id
"""

LOAD_ORDER = Statement(_ORDER_WITH_ITEMS)
"""The order, its items (in the order ``list_orders`` gives them) and its version (the row's
``xmin``, which every update of the row changes), in one round trip."""

LOCK_ORDER = Statement(_ORDER_WITH_ITEMS + " FOR UPDATE OF o")
"""As :data:`LOAD_ORDER`, the order locked for the caller's transaction."""

SAVE_ORDER = Statement("""
WITH saved_order AS (
    UPDATE orders
       SET state = :state, sequence = :sequence, updated_at = :updated_at,
           completion_date = :completion_date, failed_step = :failed_step,
           failure_reason = :failure_reason
     WHERE id = :order_id AND (:if_version::xid IS NULL OR xmin = :if_version::xid)
    RETURNING id, xmin
), saved_items AS (
    UPDATE order_items AS i
       SET state = u.state, subscription_id = u.subscription_id, progress = u.progress::jsonb
      FROM unnest(:item_ids::text[], :item_states::text[], :item_subscription_ids::text[],
                  :item_progress::text[])
           AS u(item_id, state, subscription_id, progress), saved_order
     WHERE i.order_id = saved_order.id AND i.item_id = u.item_id
), timer_set AS (
    INSERT INTO provisioning_timers (order_id, due_at)
    SELECT id, :timer_due::timestamptz FROM saved_order WHERE :timer_due::timestamptz IS NOT NULL
    ON CONFLICT (order_id) DO UPDATE SET due_at = excluded.due_at
), timer_cleared AS (
    DELETE FROM provisioning_timers AS t USING saved_order
     WHERE t.order_id = saved_order.id AND :clear_timer::boolean
)
SELECT xmin::text::bigint FROM saved_order
""")
"""The order, every item and the order's timer in one statement: what a step of the saga writes
besides its events and, for some steps, the line. With ``if_version``, only if the order's row is
still at that version: nothing is written otherwise, and no version comes back."""

PERSONAL_DATA_OF_ORDER = Statement(
    "SELECT personal_data::text, personal_data_key FROM orders WHERE id = :order_id"
)
