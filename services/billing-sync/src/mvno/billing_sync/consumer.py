"""The billing-sync service's subscriptions: one explicit dict of event type -> handler.

Run by ``mvno-billing-sync consume``. An event type without a handler is acknowledged and logged.
"""

from mvno.billing_sync import handlers
from mvno.common.bus.consumer import Handler

HANDLERS: dict[str, Handler] = {
    "orders.subscription.activated.v1": handlers.subscription_activated,
    "orders.subscription.tariff_changed.v1": handlers.subscription_changed,
    "orders.subscription.suspended.v1": handlers.subscription_changed,
    "orders.subscription.resumed.v1": handlers.subscription_changed,
    "orders.subscription.terminated.v1": handlers.subscription_changed,
    "orders.bundle.purchased.v1": handlers.bundle_purchased,
    "orders.airtime.topped_up.v1": handlers.airtime_topped_up,
    "catalog.offering.launched.v1": handlers.offering_launched,
    "catalog.offering.retired.v1": handlers.offering_retired,
    "catalog.price.changed.v1": handlers.price_changed,
}
