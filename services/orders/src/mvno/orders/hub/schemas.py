"""HTTP models of the hub, named and shaped as TMF622 names them (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mvno.orders.hub.callbacks import MAX_CALLBACK_LENGTH
from mvno.orders.hub.domain import Delivery, DeliveryStatus, Hub


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, use_attribute_docstrings=True
    )

    def dump(self) -> dict[str, Any]:
        body: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return body


class EventSubscriptionInput(_Model):
    """TMF622 ``EventSubscriptionInput``: where to send which order notifications."""

    callback: str = Field(
        min_length=1,
        max_length=MAX_CALLBACK_LENGTH,
        examples=["https://channel.example.com/listener/productOrderStateChangeEvent"],
    )
    """The URL order notifications are POSTed to (https in production, public addresses only)."""
    query: str | None = Field(
        default=None,
        max_length=1000,
        examples=[
            "eventType=ProductOrderStateChangeEvent&event.productOrder.state=completed,failed"
        ],
    )
    """Which notifications: ``name=value`` terms joined by ``&``, values of one name joined by
    commas. Names: ``eventType``, ``event.productOrder.state``, ``event.productOrder.channel.id``.
    None: every notification."""


class EventSubscription(_Model):
    """TMF622 ``EventSubscription``: a registered hub."""

    id: str
    callback: str
    query: str | None = None

    @classmethod
    def of(cls, hub: Hub) -> EventSubscription:
        return cls(id=hub.id, callback=hub.callback, query=hub.query)


class EventSubscriptionCreated(EventSubscription):
    """A hub just registered, with the secret its webhooks are signed with."""

    secret: str
    """Standard Webhooks signing secret (``whsec_…``). Shown only in this answer: keep it."""

    @classmethod
    def of(cls, hub: Hub) -> EventSubscriptionCreated:
        return cls(id=hub.id, callback=hub.callback, query=hub.query, secret=hub.secret)


class WebhookDeliveryRead(_Model):
    """One entry of a hub's delivery log: a notification and how its attempts went."""

    id: str
    """Also the ``webhook-id`` header of every attempt: receivers deduplicate on it."""
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    """Attempts made so far."""
    next_attempt_at: datetime | None = None
    """While pending: when the next attempt is due."""
    last_status_code: int | None = None
    """The HTTP status of the last attempt; none when it got no answer."""
    last_error: str | None = None
    """Why the last attempt failed."""
    created_at: datetime
    delivered_at: datetime | None = None

    @classmethod
    def of(cls, delivery: Delivery) -> WebhookDeliveryRead:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
        )
