"""The orders service's subscriptions: one explicit dict of event type -> handler.

Run by ``mvno-orders consume``. An event type without a handler is acknowledged and logged.
"""

from mvno.common.bus.consumer import Handler
from mvno.orders import billing_answers, catalogue_copy
from mvno.orders.unit_of_work import OrdersUnitOfWork

HANDLERS: dict[str, Handler[OrdersUnitOfWork]] = {
    "catalog.offering.launched.v1": catalogue_copy.offering_launched,
    "catalog.offering.retired.v1": catalogue_copy.offering_retired,
    "catalog.price.changed.v1": catalogue_copy.price_changed,
    "billing.account.created.v1": billing_answers.account_created,
}
