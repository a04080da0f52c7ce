"""The hub's rules, with no I/O: what a registration is, which events it wants, what is sent.

The notification body follows TMF622's ``ProductOrderStateChangeEvent``. It carries what a
channel needs to follow its order (ids, states, the offering and subscription of each item, why
an order failed or waits) and no personal data: the event it is built from carries none either.
"""

from __future__ import annotations

import base64
import random
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

from mvno.common.events.base import Channel
from mvno.common.events.orders import OrderItemProgress, OrderState, OrderStateChanged

PREFIX = "/tmf-api/productOrderingManagement/v4"

STATE_CHANGE_EVENT = "ProductOrderStateChangeEvent"
"""The one TMF622 notification this service sends so far."""

EVENT_TYPES = frozenset({STATE_CHANGE_EVENT})

DeliveryStatus = Literal["pending", "delivered", "failed"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix Standard Webhooks gives every secret
_SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64 random bytes.


class HubError(Exception):
    """A request about a hub that cannot be honoured; ``message`` is fit to show the caller."""

    field: str | None = None
    """The member of the request body at fault, if one is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HubNotFound(HubError):
    """No such hub, or it belongs to another client (the two are not told apart)."""


class InvalidQuery(HubError):
    """The event query names a field or value this hub cannot filter on."""

    field = "query"


class CallbackRefused(HubError):
    """The callback URL is not one the platform will call."""

    field = "callback"


@dataclass(frozen=True)
class Hub:
    """A channel's registration: where to POST which events, and the secret that signs them."""

    id: str
    owner: str
    """The client id of the channel that registered it; only that client sees it."""
    callback: str
    query: str | None
    secret: str


@dataclass(frozen=True)
class Delivery:
    """One webhook owed to a hub, and how its attempts went so far."""

    id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


# The filters a query may use, each with the values it accepts.
_FILTERS: dict[str, frozenset[str]] = {
    "eventType": EVENT_TYPES,
    "event.productOrder.state": frozenset(get_args(OrderState)),
    "event.productOrder.channel.id": frozenset(get_args(Channel)),
}


@dataclass(frozen=True)
class EventQuery:
    """Which events a hub wants: for each filter, the values it accepts (absent: any).

    The syntax is TMF630's: ``name=value`` terms joined by ``&``, several values of one name
    separated by commas, e.g. ``eventType=ProductOrderStateChangeEvent&event.productOrder.state=
    completed,failed``. An unknown name or value is refused rather than ignored, so a typo
    cannot quietly subscribe a channel to every event.
    """

    accepted: dict[str, frozenset[str]]

    @classmethod
    def parse(cls, query: str | None) -> EventQuery:
        if not query:
            return cls({})
        try:
            terms = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise InvalidQuery(
                "The query is not a list of name=value terms joined by '&'."
            ) from None
        accepted: dict[str, frozenset[str]] = {}
        for name, raw in terms:
            allowed = _FILTERS.get(name)
            if allowed is None:
                raise InvalidQuery(
                    f"The query cannot filter on {name!r}; it can on: {', '.join(_FILTERS)}."
                )
            values = frozenset(value.strip() for value in raw.split(","))
            if unknown := values - allowed:
                raise InvalidQuery(
                    f"{name} cannot be {', '.join(sorted(unknown))}; "
                    f"it can be: {', '.join(sorted(allowed))}."
                )
            accepted[name] = accepted.get(name, frozenset()) | values
        return cls(accepted)

    def wants(self, event: OrderStateChanged) -> bool:
        """Whether an order's state change is one this query asks for."""
        seen = {
            "eventType": STATE_CHANGE_EVENT,
            "event.productOrder.state": event.state,
            "event.productOrder.channel.id": event.channel,
        }
        return all(seen[name] in values for name, values in self.accepted.items())


def state_change_notification(
    event: OrderStateChanged, *, event_id: str, at: datetime
) -> dict[str, Any]:
    """The TMF622 ``ProductOrderStateChangeEvent`` body announcing ``event`` to a channel."""
    order: dict[str, Any] = {
        "id": event.order_id,
        "href": f"{PREFIX}/productOrder/{event.order_id}",
        "state": event.state,
        "channel": [{"id": event.channel, "@referredType": "Channel"}],
        "productOrderItem": [_item(item) for item in event.items],
        "@type": "ProductOrder",
    }
    if event.failure_reason is not None or event.failed_step is not None:
        # TMF622 v4 has no member for it; v5's errorMessage is where clients will look.
        error: dict[str, Any] = {"@type": "ProductOrderErrorMessage"}
        if event.failed_step is not None:
            error["code"] = event.failed_step
        if event.failure_reason is not None:
            error["reason"] = event.failure_reason
        order["errorMessage"] = [error]
    return {
        "eventId": event_id,
        "eventTime": at.isoformat(),
        "eventType": STATE_CHANGE_EVENT,
        "event": {"productOrder": order},
    }


def _item(item: OrderItemProgress) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": item.item_id,
        "action": item.action,
        "state": item.state,
        "@type": "ProductOrderItem",
    }
    if item.offering_id is not None:
        body["productOffering"] = {"id": item.offering_id}
    if item.subscription_id is not None:
        body["product"] = {"id": item.subscription_id, "@type": "Product"}
    return body


def retry_delay(attempt: int, *, base: float, ceiling: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    Exponential, capped, with "equal jitter" (half fixed, half random), so hubs that failed
    together during a channel's outage do not all come back in the same instant.
    """
    longest = min(ceiling, base * 2.0 ** (attempt - 1))
    return longest / 2 + random.uniform(0, longest / 2)  # noqa: S311 - jitter, not security
