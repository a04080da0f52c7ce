"""The inventory's hand-written SQL, sent on asyncpg: on the provisioning worker's path."""

from mvno.common.db import Statement

ADD_LINE = Statement("""
INSERT INTO subscriptions (id, customer_id, offering_id, status, msisdn, sim_kind, iccid,
                           payment_type, sequence, order_id, created_at, updated_at, secrets_key,
                           partner_subscription_id, secrets)
VALUES (:id, :customer_id, :offering_id, :status, :msisdn, :sim_kind, :iccid, :payment_type,
        :sequence, :order_id, :created_at, :updated_at, :secrets_key, :partner_subscription_id,
        :secrets::jsonb)
""")
"""A new line, every column of ``subscriptions`` given (``secrets`` as JSON text)."""

BILLING_ACCOUNT_OF_LINE = Statement(
    "SELECT billing_account_id FROM billing_accounts WHERE subscription_id = :subscription_id"
)
"""billing-sync's account for a line, once its answer arrived."""
