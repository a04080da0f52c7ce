"""The portal-api service's subscriptions: one explicit dict of event type -> handler.

Run by ``mvno-portal-api consume``. An event type without a handler is acknowledged and logged.
"""

from mvno.common.bus.consumer import Handler
from mvno.portal_api import handlers
from mvno.portal_api.repository import PortalUnitOfWork

HANDLERS: dict[str, Handler[PortalUnitOfWork]] = {
    "orders.order.state_changed.v1": handlers.order_state_changed,
    "orders.subscription.activated.v1": handlers.subscription_changed,
    "orders.subscription.suspended.v1": handlers.subscription_changed,
    "orders.subscription.resumed.v1": handlers.subscription_changed,
    "orders.subscription.terminated.v1": handlers.subscription_changed,
    "orders.subscription.tariff_changed.v1": handlers.subscription_changed,
    "billing.usage.recorded.v1": handlers.balance_moved,
    "billing.balance.ran_low.v1": handlers.balance_moved,
    "billing.bundle.depleted.v1": handlers.balance_moved,
    "billing.bundle.expired.v1": handlers.balance_moved,
    "catalog.offering.launched.v1": handlers.catalogue_changed,
    "catalog.offering.retired.v1": handlers.catalogue_changed,
    "catalog.price.changed.v1": handlers.catalogue_changed,
}
