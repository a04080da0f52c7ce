"""Orders and their items, in TMF622's states, and the rules for placing and cancelling them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from mvno.orders.domain.catalogue import OfferingCopy
from mvno.orders.domain.identity import InvalidIdentity, age_on, sa_id_birth_date

Channel = Literal["app", "web", "branch", "call_centre", "ussd", "partner"]
Action = Literal["add", "modify", "delete"]
Change = Literal["bundle", "airtime", "tariff", "sim_swap", "suspend", "resume"]
SimKind = Literal["pSIM", "eSIM"]

BUYABLE_FOR_NEW_LINE = ("starter_pack", "contract")
BUYABLE_FOR_LINE = {
    "bundle": ("data_bundle", "voice_bundle", "combo_bundle"),
    "airtime": ("airtime",),
    "tariff": ("contract",),
}
MINIMUM_AGE = 16
"""Below this age RICA needs a guardian; the platform does not sell to minors directly."""


class OrderState(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "inProgress"
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({OrderState.COMPLETED, OrderState.FAILED, OrderState.CANCELLED})


@dataclass(frozen=True)
class Problem:
    """One reason an order is refused, pointing at the offending input."""

    pointer: str
    detail: str


class OrderRejected(Exception):
    """The order cannot be placed; every reason is listed."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.detail for p in problems))
        self.problems = problems


class CannotCancel(Exception):
    """The order has gone too far (or ended) to be cancelled."""


class CannotResubmit(Exception):
    """The order is not waiting for corrected documents."""


@dataclass(frozen=True)
class RicaDetails:
    """What RICA needs to register a SIM to a person. Personal data: sealed at rest, never logged."""

    id_type: Literal["sa_id", "passport"]
    id_number: str
    full_name: str
    address: str
    """The residential address as JSON: ``line1``, ``line2``, ``suburb``, ``city``, ``postalCode``."""
    passport_country: str | None = None
    date_of_birth: date | None = None

    def personal_fields(self) -> dict[str, str]:
        """The details as text fields, to seal."""
        fields = {
            "id_type": self.id_type,
            "id_number": self.id_number,
            "full_name": self.full_name,
            "address": self.address,
        }
        if self.passport_country:
            fields["passport_country"] = self.passport_country
        if self.date_of_birth:
            fields["date_of_birth"] = self.date_of_birth.isoformat()
        return fields


@dataclass(frozen=True)
class SubscriptionView:
    """What ordering needs to know of a customer's existing line."""

    subscription_id: str
    customer_id: str
    status: str
    payment_type: str
    offering_id: str


@dataclass(frozen=True)
class ItemRequest:
    item_id: str
    action: Action
    offering_id: str | None = None
    change: Change | None = None
    sim_kind: SimKind | None = None
    subscription_id: str | None = None
    port_in_msisdn: str | None = None


@dataclass(frozen=True)
class PlaceOrder:
    customer_id: str
    channel: Channel
    client_id: str
    items: tuple[ItemRequest, ...]
    rica: RicaDetails | None = None
    external_id: str | None = None
    payment_account: str | None = None
    """The customer's bank account charged for the order. Personal data: sealed at rest."""


@dataclass
class OrderItem:
    item_id: str
    action: Action
    state: OrderState
    change: Change | None = None
    offering_id: str | None = None
    offering_name: str | None = None
    sim_kind: SimKind | None = None
    subscription_id: str | None = None
    port_in_msisdn: str | None = None
    prices: list[dict[str, str | None]] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    """The provisioning saga's record of this item (see ``domain.saga.ItemProgress``)."""

    def amount_due(self) -> Decimal:
        """What the item is charged now: its one-time prices, VAT included (contracts bill
        monthly through the billing platform)."""
        return sum(
            (
                Decimal(str(price["tax_included_amount"]))
                for price in self.prices
                if price["price_type"] == "oneTime"
            ),
            Decimal(0),
        )


@dataclass
class Order:
    id: str
    customer_id: str
    channel: Channel
    client_id: str
    state: OrderState
    sequence: int
    order_date: datetime
    updated_at: datetime
    items: list[OrderItem]
    external_id: str | None = None
    completion_date: datetime | None = None
    failed_step: str | None = None
    failure_reason: str | None = None
    rica: RicaDetails | None = None
    payment_account: str | None = None
    changes: list[tuple[OrderState | None, OrderState]] = field(default_factory=list, repr=False)
    """State moves not yet announced, oldest first: (previous, new)."""

    def move_to(self, state: OrderState, at: datetime) -> None:
        previous = self.state
        self.state = state
        self.sequence += 1
        self.updated_at = at
        if state in FINAL_STATES:
            self.completion_date = at
        for item in self.items:
            if item.state not in FINAL_STATES:
                item.state = state
        self.changes.append((previous, state))

    def resubmit_documents(self, rica: RicaDetails, at: datetime) -> None:
        """Corrected RICA details for an order waiting on them: provisioning goes on."""
        if self.state is not OrderState.PENDING:
            raise CannotResubmit(
                f"order {self.id} is {self.state}; documents are resubmitted only while pending"
            )
        if problems := _check_rica(rica, at):
            raise OrderRejected(problems)
        self.rica = rica
        self.failure_reason = None
        self.move_to(OrderState.IN_PROGRESS, at)

    def cancel(self, at: datetime) -> None:
        """Cancel while nothing has been done at a partner yet: before provisioning starts."""
        if self.state is not OrderState.ACKNOWLEDGED:
            raise CannotCancel(
                f"order {self.id} is {self.state}; only an acknowledged order can be cancelled"
            )
        self.move_to(OrderState.CANCELLED, at)


def place_order(
    order_id: str,
    command: PlaceOrder,
    *,
    offerings: Mapping[str, OfferingCopy],
    subscriptions: Mapping[str, SubscriptionView],
    at: datetime,
) -> Order:
    """Check every item against the catalogue copy and the customer's lines; all problems at once."""
    problems: list[Problem] = []
    items: list[OrderItem] = []
    if len({item.item_id for item in command.items}) != len(command.items):
        problems.append(Problem("/productOrderItem", "item ids must be unique within an order"))
    for index, request in enumerate(command.items):
        where = f"/productOrderItem/{index}"
        item = OrderItem(
            item_id=request.item_id,
            action=request.action,
            state=OrderState.ACKNOWLEDGED,
            change=request.change,
            sim_kind=request.sim_kind,
            subscription_id=request.subscription_id,
            port_in_msisdn=request.port_in_msisdn,
        )
        problems += _check_item(request, item, where, command, offerings, subscriptions, at)
        items.append(item)
    if any(request.action == "add" for request in command.items):
        problems += _check_rica(command.rica, at)
    if command.payment_account is None and any(item.amount_due() > 0 for item in items):
        problems.append(Problem("/payment", "the order costs money: name the account to charge"))
    if problems:
        raise OrderRejected(problems)
    order = Order(
        id=order_id,
        customer_id=command.customer_id,
        channel=command.channel,
        client_id=command.client_id,
        state=OrderState.ACKNOWLEDGED,
        sequence=1,
        order_date=at,
        updated_at=at,
        items=items,
        external_id=command.external_id,
        rica=command.rica,
        payment_account=command.payment_account,
    )
    order.changes.append((None, OrderState.ACKNOWLEDGED))
    return order


def _check_item(
    request: ItemRequest,
    item: OrderItem,
    where: str,
    command: PlaceOrder,
    offerings: Mapping[str, OfferingCopy],
    subscriptions: Mapping[str, SubscriptionView],
    at: datetime,
) -> list[Problem]:
    problems: list[Problem] = []
    needs_offering = request.action == "add" or request.change in BUYABLE_FOR_LINE
    if request.action == "add":
        if request.sim_kind is None:
            problems.append(
                Problem(f"{where}/simKind", "a new line needs a SIM kind: pSIM or eSIM")
            )
    else:
        line = subscriptions.get(request.subscription_id or "")
        if line is None or line.customer_id != command.customer_id:
            problems.append(Problem(f"{where}/product/id", "the customer has no such subscription"))
            return problems
        if line.status == "terminated":
            problems.append(Problem(f"{where}/product/id", "the subscription is terminated"))
        elif request.change == "resume" and line.status != "suspended":
            problems.append(Problem(f"{where}/product/id", "only a suspended line can resume"))
        elif (
            request.change != "resume" and line.status == "suspended" and request.action != "delete"
        ):
            problems.append(
                Problem(f"{where}/product/id", "the line is suspended; resume it first")
            )
        if request.change == "airtime" and line.payment_type != "prepaid":
            problems.append(Problem(f"{where}/product/id", "airtime is for prepaid lines"))
        if request.change == "sim_swap" and request.sim_kind is None:
            problems.append(Problem(f"{where}/simKind", "a SIM swap needs the new SIM's kind"))
    if not needs_offering:
        if request.offering_id is not None:
            problems.append(Problem(f"{where}/productOffering", "this action takes no offering"))
        return problems
    offering = offerings.get(request.offering_id or "")
    if offering is None:
        problems.append(Problem(f"{where}/productOffering/id", "no such offering in the catalogue"))
        return problems
    if not offering.sellable(at, command.channel):
        problems.append(
            Problem(
                f"{where}/productOffering/id",
                f"offering {offering.offering_id} is not sold on the {command.channel} channel now",
            )
        )
    allowed = (
        BUYABLE_FOR_NEW_LINE if request.action == "add" else BUYABLE_FOR_LINE[request.change or ""]
    )
    if offering.product_kind not in allowed:
        problems.append(
            Problem(
                f"{where}/productOffering/id",
                f"a {offering.product_kind} offering cannot be bought this way",
            )
        )
    if (
        request.action == "add"
        and request.sim_kind
        and request.sim_kind not in offering.sim_kinds
        and offering.sim_kinds
    ):
        problems.append(
            Problem(f"{where}/simKind", f"this offering comes with {', '.join(offering.sim_kinds)}")
        )
    prices = offering.prices_at(at)
    if not prices:
        problems.append(Problem(f"{where}/productOffering/id", "the offering has no price now"))
    item.offering_id = offering.offering_id
    item.offering_name = offering.name
    item.prices = [price.snapshot() for price in prices]
    return problems


def _check_rica(rica: RicaDetails | None, at: datetime) -> list[Problem]:
    if rica is None:
        return [Problem("/customer", "a new line needs the customer's RICA details")]
    if rica.id_type == "passport":
        if not rica.passport_country:
            return [Problem("/customer/passportCountry", "a passport needs its issuing country")]
        if rica.date_of_birth is None:
            return [Problem("/customer/dateOfBirth", "a passport holder's date of birth is needed")]
        born = rica.date_of_birth
    else:
        try:
            born = sa_id_birth_date(rica.id_number, today=at.date())
        except InvalidIdentity as error:
            # The reason names the rule, never the number.
            return [Problem("/customer/idNumber", str(error))]
        if rica.date_of_birth is not None and rica.date_of_birth != born:
            return [
                Problem("/customer/dateOfBirth", "the date of birth does not match the ID number")
            ]
    if age_on(born, at.date()) < MINIMUM_AGE:
        return [Problem("/customer", f"the customer must be at least {MINIMUM_AGE}")]
    return []
