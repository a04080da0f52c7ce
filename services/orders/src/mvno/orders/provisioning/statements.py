"""The provisioning timers' hand-written SQL, sent on asyncpg.

Every worker looks at the timers several times a second: taking the due ones is one statement.
"""

from mvno.common.db import Statement

TAKE_DUE_TIMERS = Statement("""
UPDATE provisioning_timers SET due_at = :lease_until
 WHERE order_id IN (SELECT order_id FROM provisioning_timers WHERE due_at <= :at
                     ORDER BY due_at LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING order_id,
          (SELECT trace_context FROM orders WHERE orders.id = provisioning_timers.order_id)
""")
"""Take up to ``limit`` due timers, moved on to ``lease_until`` in the same statement; timers
another worker is taking right now are skipped, not waited for. Each comes with its order's
trace context, which the steps taken up continue."""

DROP_TIMER = Statement(
    "DELETE FROM provisioning_timers WHERE order_id = :order_id AND due_at = :due_at"
)
"""Delete an order's timer if it is still due when it was (no step replaced it)."""

WAKE_ORDER = Statement("""
INSERT INTO provisioning_timers (order_id, due_at) VALUES (:order_id, :due_at)
ON CONFLICT (order_id) DO UPDATE SET due_at = least(provisioning_timers.due_at, excluded.due_at)
""")
"""Make an order's timer due at ``due_at``, or keep it if it is due sooner."""

OPEN_ORDERS_BY_STATE = Statement("""
SELECT state, count(*) AS orders FROM orders WHERE state = ANY(:states) GROUP BY state
""")
"""The orders not yet final, by state (the state index: no scan of the finished ones)."""
