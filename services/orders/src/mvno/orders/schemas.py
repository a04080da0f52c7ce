"""HTTP models of the ordering API, shaped as TMF622 names them.

Personal data comes in (``customer``, for RICA) and never goes out: no answer echoes it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import to_json

from mvno.common.tmf import Id, TmfInput, TmfOutput, TmfRef
from mvno.orders.domain.model import (
    Action,
    Change,
    Channel,
    ItemRequest,
    Order,
    PlaceOrder,
    RicaDetails,
    SimKind,
)

PREFIX = "/tmf-api/productOrderingManagement/v4"

Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"^[^\x00]+$"),
]


class ChannelRef(TmfInput):
    id: Channel
    role: str | None = None
    name: str | None = None


class PartyRef(TmfInput):
    id: Id
    role: Literal["Customer"] = "Customer"
    name: None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class Address(TmfInput):
    line1: Text
    line2: Text | None = None
    suburb: Text | None = None
    city: Text
    postal_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]


class Customer(TmfInput):
    """RICA details of the person the new line is registered to (sealed at rest)."""

    id_type: Literal["sa_id", "passport"]
    id_number: Annotated[
        str, StringConstraints(min_length=5, max_length=20, pattern=r"^[A-Z0-9]+$")
    ]
    full_name: Text
    address: Address
    passport_country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    date_of_birth: date | None = None

    def to_domain(self) -> RicaDetails:
        return RicaDetails(
            id_type=self.id_type,
            id_number=self.id_number,
            full_name=self.full_name,
            address=self.address.model_dump_json(by_alias=True, exclude_none=True),
            passport_country=self.passport_country,
            date_of_birth=self.date_of_birth,
        )


class OrderItemCreate(TmfInput):
    id: Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]
    action: Action
    change: Change | None = None
    product_offering: TmfRef | None = None
    product: TmfRef | None = None
    """The existing subscription (TMF637 product) a ``modify`` or ``delete`` is about."""
    sim_kind: SimKind | None = None
    port_in_msisdn: str | None = Field(default=None, max_length=20)
    """A number to bring from another network, in any South African format."""

    @field_validator("port_in_msisdn")
    @classmethod
    def _south_african_mobile(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            number = phonenumbers.parse(value, "ZA")
        except phonenumbers.NumberParseException:
            raise ValueError("not a phone number") from None
        if not phonenumbers.is_valid_number(number) or number.country_code != 27:
            raise ValueError("not a valid South African number")
        if phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE:
            raise ValueError("not a mobile number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @model_validator(mode="after")
    def _shape_fits_action(self) -> OrderItemCreate:
        if self.action == "add":
            if self.change is not None or self.product is not None:
                raise ValueError("an add item takes neither change nor product")
            if self.product_offering is None:
                raise ValueError("an add item names the productOffering to sell")
        else:
            if self.product is None:
                raise ValueError(
                    f"a {self.action} item names the product (subscription) it changes"
                )
            if self.port_in_msisdn is not None:
                raise ValueError("only an add item ports a number in")
        if self.action == "modify" and self.change is None:
            raise ValueError(
                "a modify item says which change: bundle, airtime, tariff, sim_swap, suspend or resume"
            )
        if self.action == "delete" and (
            self.change is not None or self.product_offering is not None
        ):
            raise ValueError("a delete item takes only the product")
        return self

    def to_domain(self) -> ItemRequest:
        return ItemRequest(
            item_id=self.id,
            action=self.action,
            offering_id=self.product_offering.id if self.product_offering else None,
            change=self.change,
            sim_kind=self.sim_kind,
            subscription_id=self.product.id if self.product else None,
            port_in_msisdn=self.port_in_msisdn,
        )


class PaymentRef(TmfInput):
    """The customer's bank account to charge (TMF622 ``payment``). Sealed at rest, never echoed."""

    id: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,16}$")]
    referred_type: Literal["BankAccount"] = Field(default="BankAccount", alias="@referredType")


class OrderCreate(TmfInput):
    external_id: Annotated[str, StringConstraints(max_length=100, pattern=r"^[^\x00]*$")] | None = (
        None
    )
    channel: list[ChannelRef] = Field(min_length=1, max_length=1)
    related_party: list[PartyRef] = Field(min_length=1, max_length=1)
    customer: Customer | None = None
    payment: list[PaymentRef] = Field(default_factory=list, max_length=1)
    product_order_item: list[OrderItemCreate] = Field(min_length=1, max_length=10)

    def to_command(self, client_id: str) -> PlaceOrder:
        return PlaceOrder(
            customer_id=self.related_party[0].id,
            channel=self.channel[0].id,
            client_id=client_id,
            items=tuple(item.to_domain() for item in self.product_order_item),
            rica=self.customer.to_domain() if self.customer else None,
            external_id=self.external_id,
            payment_account=self.payment[0].id if self.payment else None,
        )

    def fingerprint(self) -> str:
        """The same request body, whatever its formatting or member order, gives the same
        fingerprint: the hash of the validated body as pydantic writes it (members in the model's
        order; no member of an order is a free-form object whose keys could come in any order).
        """
        return hashlib.sha256(self.__pydantic_serializer__.to_json(self)).hexdigest()

    def earlier_fingerprint(self) -> str:
        """The fingerprint as earlier releases made it (sorted ``json.dumps``), for a key one of
        them stored and a client retries since. Keys live 24 hours: this goes once no key of
        that form can remain."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class MoneyRead(TmfOutput):
    unit: str = "ZAR"
    value: float


class PriceRead(TmfOutput):
    tax_included_amount: MoneyRead
    duty_free_amount: MoneyRead
    tax_rate: float


class ItemPriceRead(TmfOutput):
    price_type: str
    recurring_charge_period: str | None = None
    unit_of_measure: str | None = None
    product_offering_price: dict[str, Any] | None = None
    price: PriceRead


class RefRead(TmfOutput):
    id: str
    href: str | None = None
    name: str | None = None
    role: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class OrderItemRead(TmfOutput):
    id: str
    action: str
    state: str
    change: str | None = None
    sim_kind: str | None = None
    product_offering: RefRead | None = None
    product: RefRead | None = None
    item_price: list[ItemPriceRead] | None = None
    type_: str = Field(default="ProductOrderItem", alias="@type")


class OrderRead(TmfOutput):
    id: str
    href: str | None = None
    external_id: str | None = None
    state: str | None = None
    order_date: datetime | None = None
    completion_date: datetime | None = None
    channel: list[RefRead] | None = None
    related_party: list[RefRead] | None = None
    product_order_item: list[OrderItemRead] | None = None
    failed_step: str | None = None
    failure_reason: str | None = None
    type_: str = Field(default="ProductOrder", alias="@type")


def _members(model: type[TmfOutput], *fields: str) -> tuple[str, ...]:
    """The answer's names (the aliases) of ``model``'s fields, in the order given. Every field
    must be given, once: a field added to or renamed in the model fails here, at import, instead
    of leaving the hand-built answer behind it."""
    declared = model.model_fields
    if sorted(fields) != sorted(declared):
        raise TypeError(f"{model.__name__} declares {sorted(declared)}, the answer builds {fields}")
    return tuple(declared[name].alias or name for name in fields)


def _type_of(model: type[TmfOutput]) -> str:
    """The ``@type`` a model answers with (its ``type_`` field's default)."""
    return str(model.model_fields["type_"].default)


# The answer's member names, each read from its model's alias once, here.
(
    _ID, _HREF, _EXTERNAL_ID, _STATE, _ORDER_DATE, _COMPLETION_DATE, _CHANNEL, _RELATED_PARTY,
    _PRODUCT_ORDER_ITEM, _FAILED_STEP, _FAILURE_REASON, _ORDER_AT_TYPE,
) = _members(
    OrderRead,
    "id", "href", "external_id", "state", "order_date", "completion_date", "channel",
    "related_party", "product_order_item", "failed_step", "failure_reason", "type_",
)  # fmt: skip
_ORDER_TYPE = _type_of(OrderRead)
(
    _ITEM_ID, _ACTION, _ITEM_STATE, _CHANGE, _SIM_KIND, _PRODUCT_OFFERING, _PRODUCT,
    _ITEM_PRICE, _ITEM_AT_TYPE,
) = _members(
    OrderItemRead,
    "id", "action", "state", "change", "sim_kind", "product_offering", "product", "item_price",
    "type_",
)  # fmt: skip
_ITEM_TYPE = _type_of(OrderItemRead)
_REF_ID, _, _REF_NAME, _REF_ROLE, _ = _members(
    RefRead, "id", "href", "name", "role", "referred_type"
)
_PRICE_TYPE, _RECURRING_CHARGE_PERIOD, _UNIT_OF_MEASURE, _PRODUCT_OFFERING_PRICE, _PRICE = (
    _members(
        ItemPriceRead,
        "price_type", "recurring_charge_period", "unit_of_measure", "product_offering_price",
        "price",
    )
)  # fmt: skip
_TAX_INCLUDED_AMOUNT, _DUTY_FREE_AMOUNT, _TAX_RATE = _members(
    PriceRead, "tax_included_amount", "duty_free_amount", "tax_rate"
)
_UNIT, _VALUE = _members(MoneyRead, "unit", "value")


def order_answer(order: Order) -> dict[str, Any]:
    """``order`` as its answer, the members :class:`OrderRead` documents by their TMF names and
    those without a value left out (as :func:`~mvno.common.tmf.dump` of an ``OrderRead`` gives
    it: a test holds the two equal). Built as plain data rather than through the models, whose
    building and checking cost more: the intake renders one per order placed. The names come
    from the models' aliases, read once at import."""
    items = [
        _present(
            {
                _ITEM_ID: item.item_id,
                _ACTION: item.action,
                _ITEM_STATE: str(item.state),
                _CHANGE: item.change,
                _SIM_KIND: item.sim_kind,
                _PRODUCT_OFFERING: (
                    _present({_REF_ID: item.offering_id, _REF_NAME: item.offering_name})
                    if item.offering_id
                    else None
                ),
                _PRODUCT: {_REF_ID: item.subscription_id} if item.subscription_id else None,
                _ITEM_PRICE: [_item_price(price) for price in item.prices],
                _ITEM_AT_TYPE: _ITEM_TYPE,
            }
        )
        for item in order.items
    ]
    return _present(
        {
            _ID: order.id,
            _HREF: f"{PREFIX}/productOrder/{order.id}",
            _EXTERNAL_ID: order.external_id,
            _STATE: str(order.state),
            _ORDER_DATE: order.order_date,
            _COMPLETION_DATE: order.completion_date,
            _CHANNEL: [{_REF_ID: order.channel, _REF_ROLE: "salesChannel"}],
            _RELATED_PARTY: [{_REF_ID: order.customer_id, _REF_ROLE: "Customer"}],
            _PRODUCT_ORDER_ITEM: items,
            _FAILED_STEP: order.failed_step,
            _FAILURE_REASON: order.failure_reason,
            _ORDER_AT_TYPE: _ORDER_TYPE,
        }
    )


def order_answer_json(order: Order) -> bytes:
    """:func:`order_answer` as JSON, written as pydantic writes an ``OrderRead``."""
    return to_json(order_answer(order))


def _present(members: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in members.items() if value is not None}


def _item_price(price: dict[str, str | None]) -> dict[str, Any]:
    return _present(
        {
            _PRICE_TYPE: price["price_type"] or "",
            _RECURRING_CHARGE_PERIOD: price.get("recurring_period"),
            _UNIT_OF_MEASURE: price.get("unit_of_measure"),
            _PRODUCT_OFFERING_PRICE: {_REF_ID: price["price_id"]},
            _PRICE: {
                _TAX_INCLUDED_AMOUNT: _money(price["tax_included_amount"]),
                _DUTY_FREE_AMOUNT: _money(price["duty_free_amount"]),
                _TAX_RATE: float(Decimal(price["tax_rate"] or 0)),
            },
        }
    )


def _money(amount: str | None) -> dict[str, Any]:
    return {_UNIT: "ZAR", _VALUE: float(Decimal(amount or 0))}


class OrderDocumentsUpdate(TmfInput):
    """A merge patch of a pending order: corrected RICA details, the only change allowed."""

    customer: Customer


class CancelCreate(TmfInput):
    product_order: TmfRef
    cancellation_reason: (
        Annotated[str, StringConstraints(max_length=300, pattern=r"^[^\x00]*$")] | None
    ) = None


class CancelRead(TmfOutput):
    id: str
    state: str = "done"
    product_order: RefRead
    cancellation_reason: str | None = None
    effective_cancellation_date: AwareDatetime | None = None
    type_: str = Field(default="CancelProductOrder", alias="@type")


# --- product inventory (TMF637) -----------------------------------------------------------------

INVENTORY_PREFIX = "/tmf-api/productInventory/v4"


class CharacteristicRead(TmfOutput):
    name: str
    value: str


class ProductOrderItemRefRead(TmfOutput):
    product_order_id: str
    order_item_id: str | None = None


class ProductRead(TmfOutput):
    """A subscription as TMF637 shows a product; the eSIM activation code is never in it."""

    id: str
    href: str
    status: str
    start_date: datetime
    product_offering: RefRead
    related_party: list[RefRead]
    product_characteristic: list[CharacteristicRead]
    product_order_item: list[ProductOrderItemRefRead]
    last_update: datetime
    type_: str = Field(default="Product", alias="@type")

    @classmethod
    def of(cls, line: dict[str, Any]) -> ProductRead:
        characteristics = {
            "msisdn": line["msisdn"],
            "simKind": line["sim_kind"],
            "iccid": line["iccid"],
            "paymentType": line["payment_type"],
        }
        return cls(
            id=line["id"],
            href=f"{INVENTORY_PREFIX}/product/{line['id']}",
            status=line["status"],
            start_date=line["created_at"],
            last_update=line["updated_at"],
            product_offering=RefRead(id=line["offering_id"]),
            related_party=[RefRead(id=line["customer_id"], role="Customer")],
            product_characteristic=[
                CharacteristicRead(name=name, value=value)
                for name, value in characteristics.items()
                if value is not None
            ],
            product_order_item=(
                [ProductOrderItemRefRead(product_order_id=line["order_id"])]
                if line["order_id"]
                else []
            ),
        )


class EsimActivationRead(TmfOutput):
    activation_code: str
