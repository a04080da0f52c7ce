"""Events published by the orders service (producer ``orders``): orders, subscriptions, purchases.

Order progress is one event type, ``orders.order.state_changed.v1``, carrying the new and the
previous state, rather than one type per state. Why:

* its consumers (portal-api's live progress and read model, channel webhooks, which TMF622 models
  as a single ``ProductOrderStateChangeEvent``) want every transition, in one handler;
* a state added later (``held``, ``assessingCancellation``) is a new enum value, an additive change,
  instead of a new type every consumer must subscribe to;
* what only one state has (why an order failed) is an optional field, set for that state only.

Subscriptions (TMF637 products) have one type per lifecycle fact, because their consumers act
differently on each (billing-sync opens, changes, suspends or closes a billing account).

Ordering: SQS delivers out of order and more than once. Events about one order or one subscription
carry ``sequence``, increasing by one per event about that aggregate, so a consumer keeping a copy
applies an event only when its ``sequence`` is above the last one it applied. Purchases (bundles,
airtime) are independent facts, deduplicated by ``order_id`` + ``order_item_id``.

States and actions use TMF622's spellings (``inProgress``, ``add``/``modify``/``delete``).
The MSISDN travels (billing-sync matches network usage by it); personal data never does.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, PositiveInt

from mvno.common.events.base import (
    Allowance,
    Channel,
    ContractModel,
    EventData,
    Money,
    PaymentType,
    SimKind,
)

PRODUCER = "orders"

OrderState = Literal["acknowledged", "inProgress", "pending", "completed", "failed", "cancelled"]
"""TMF622 order states the provisioning engine uses."""

OrderItemState = Literal[
    "acknowledged", "inProgress", "pending", "completed", "failed", "cancelled"
]
"""TMF622 order item states the provisioning engine uses."""

OrderItemAction = Literal["add", "modify", "delete"]
"""TMF622 item actions: a new subscription, a change to one (bundle, top-up, tariff, SIM swap,
suspend, resume), or its termination."""

Msisdn = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
"""A mobile number in E.164 form, e.g. ``+27821234567``."""


class OrderItemProgress(ContractModel):
    """Where one item of an order stands."""

    item_id: str = Field(min_length=1)
    action: OrderItemAction
    offering_id: str | None = None
    subscription_id: str | None = None
    """The subscription it created or changes, once known."""
    state: OrderItemState


class OrderStateChanged(EventData):
    """An order moved to another TMF622 state (including its first state, ``acknowledged``)."""

    event_type = "orders.order.state_changed.v1"
    subject_field = "order_id"

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    channel: Channel
    state: OrderState
    previous_state: OrderState | None = None
    """``None`` for the first event of an order."""
    sequence: PositiveInt
    """1 for the order's first event, one more for each later one."""
    items: tuple[OrderItemProgress, ...]
    failed_step: str | None = None
    """For ``failed``: the provisioning step whose retries were spent, e.g. ``activate``."""
    failure_reason: str | None = None
    """For ``failed`` (and ``pending``): why, fit to show a customer; never personal data."""


class _SubscriptionEvent(EventData):
    """Fields every subscription lifecycle event carries."""

    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    sequence: PositiveInt
    """1 for ``activated``, one more for each later lifecycle event of the subscription."""
    order_id: str | None = None
    """The order that caused it; ``None`` when staff or a system changed it without one."""


class SubscriptionActivated(_SubscriptionEvent):
    """A new subscription is live on the network (an ``add`` item's provisioning finished).

    billing-sync answers with ``billing.account.created.v1`` (or ``.sync_failed.v1``), which the
    provisioning saga waits for.
    """

    event_type = "orders.subscription.activated.v1"

    msisdn: Msisdn
    offering_id: str = Field(min_length=1)
    payment_type: PaymentType
    sim_kind: SimKind


class SubscriptionSuspended(_SubscriptionEvent):
    """A subscription was barred on the network (for example a lost or stolen phone)."""

    event_type = "orders.subscription.suspended.v1"

    reason: Literal["lost_or_stolen", "customer_request"]


class SubscriptionResumed(_SubscriptionEvent):
    """A suspended subscription is live again."""

    event_type = "orders.subscription.resumed.v1"


class SubscriptionTerminated(_SubscriptionEvent):
    """A subscription ended for good; its number is released."""

    event_type = "orders.subscription.terminated.v1"


class SubscriptionTariffChanged(_SubscriptionEvent):
    """A subscription moved to another offering (tariff)."""

    event_type = "orders.subscription.tariff_changed.v1"

    offering_id: str = Field(min_length=1)
    previous_offering_id: str = Field(min_length=1)
    payment_type: PaymentType


class BundlePurchased(EventData):
    """A bundle was bought for a subscription and paid for; billing-sync opens its buckets.

    The allowance and validity are the ones sold (the order's catalogue snapshot), so the buckets
    do not depend on when billing-sync reads the event.
    """

    event_type = "orders.bundle.purchased.v1"
    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    order_item_id: str = Field(min_length=1)
    offering_id: str = Field(min_length=1)
    allowance: Allowance
    price: Money
    """Tax included, as sold."""
    valid_from: AwareDatetime
    valid_to: AwareDatetime


class AirtimeToppedUp(EventData):
    """Airtime was bought for a prepaid subscription and paid for; it adds to the balance."""

    event_type = "orders.airtime.topped_up.v1"
    subject_field = "subscription_id"

    subscription_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    order_item_id: str = Field(min_length=1)
    amount: Money


class ProvisioningStepDue(EventData):
    """Internal to orders: the next provisioning step of an order is due.

    A unit of work for the provisioning workers, on a queue of their own; any worker may take it,
    so a crashed worker's order is resumed by another. No other service subscribes to it.
    """

    event_type = "orders.provisioning.step_due.v1"
    subject_field = "order_id"

    order_id: str = Field(min_length=1)


EVENTS: tuple[type[EventData], ...] = (
    OrderStateChanged,
    SubscriptionActivated,
    SubscriptionSuspended,
    SubscriptionResumed,
    SubscriptionTerminated,
    SubscriptionTariffChanged,
    BundlePurchased,
    AirtimeToppedUp,
    ProvisioningStepDue,
)
"""Every event this producer publishes, listed by hand for the registry."""
