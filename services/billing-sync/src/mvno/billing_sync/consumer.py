"""The billing-sync service's subscriptions: one explicit dict of event type -> handler.

Run by ``mvno-billing-sync consume``. Handlers join here as the service's features land; an event
type without a handler is acknowledged and logged by the consumer.
"""

from mvno.common.bus.consumer import Handler

HANDLERS: dict[str, Handler] = {}
