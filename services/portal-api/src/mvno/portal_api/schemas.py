"""HTTP models of the portal API: shaped for the customer's screens, camelCase on the wire."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from mvno.common.tmf import Id
from mvno.portal_api.domain.model import Purchase, RicaDetails

Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$"
    ),
]
Freshness = Literal["current", "stale", "unavailable"]
"""``current``: just read from its owner or a copy young enough; ``stale``: the owner did not
answer, this is the last copy (see ``asOf``); ``unavailable``: the owner did not answer and there is
no copy."""


class Input(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Output(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def wire_keys(model: type[BaseModel]) -> Any:
    """The JSON keys of ``model``'s fields (their aliases), as attributes named like the fields
    (``wire_keys(LineRead).sim_kind == "simKind"``), for answers rendered from plain dicts: a key
    the model does not have is an ``AttributeError``, not a silent drift."""
    return _WireKeys(model)


class _WireKeys:
    # A plain instance: its attributes are read as fast as a dict literal's constant keys.
    def __init__(self, model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            setattr(self, name, field.alias or name)


# --- requests ------------------------------------------------------------------------------------


class AddressInput(Input):
    line1: Text
    city: Text
    postal_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]


class RegistrationInput(Input):
    """Who a new line is registered to (RICA). Passed on to orders, never kept by the portal."""

    id_type: Literal["sa_id", "passport"]
    id_number: Annotated[
        str, StringConstraints(min_length=5, max_length=20, pattern=r"^[A-Z0-9]+$")
    ]
    full_name: Text
    address: AddressInput
    passport_country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None


class PurchaseCreate(Input):
    """Buy a new line (``line``: an eSIM or a SIM card), or a bundle or airtime for a line."""

    kind: Literal["line", "bundle", "airtime"]
    offering_id: Id
    subscription_id: Id | None = None
    sim_kind: Literal["eSIM", "pSIM"] | None = None
    customer: RegistrationInput | None = None
    bank_account: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,16}$")] | None = None

    @model_validator(mode="after")
    def _shape_fits_kind(self) -> PurchaseCreate:
        if self.kind == "line" and self.subscription_id is not None:
            raise ValueError("a new line is not bought for an existing line")
        if self.kind != "line" and (self.customer is not None or self.sim_kind is not None):
            raise ValueError(f"a {self.kind} takes neither customer nor simKind")
        return self

    def to_domain(self) -> Purchase:
        rica = None
        if self.customer is not None:
            rica = RicaDetails(
                id_type=self.customer.id_type,
                id_number=self.customer.id_number,
                full_name=self.customer.full_name,
                address_line1=self.customer.address.line1,
                city=self.customer.address.city,
                postal_code=self.customer.address.postal_code,
                passport_country=self.customer.passport_country,
            )
        return Purchase(
            kind=self.kind,
            offering_id=self.offering_id,
            subscription_id=self.subscription_id,
            sim_kind=self.sim_kind,
            rica=rica,
            bank_account=self.bank_account,
        )


class DemoSessionCreate(Input):
    customer_id: Annotated[
        str, StringConstraints(min_length=3, max_length=64, pattern=r"^[a-z0-9-]+$")
    ]


# --- answers -------------------------------------------------------------------------------------


class MoneyRead(Output):
    amount: float
    currency: str = "ZAR"


class AllowanceRead(Output):
    name: str
    usage_type: str
    remaining: float
    initial: float
    units: str
    expires_at: str | None = None
    status: str


class BalanceRead(Output):
    status: Freshness
    as_of: datetime | None = None
    airtime: MoneyRead | None = None
    data_mb: float | None = Field(default=None, alias="dataMB")
    voice_minutes: float | None = None
    sms: float | None = None
    allowances: list[AllowanceRead] = Field(default_factory=list)


class LineRead(Output):
    id: str
    msisdn: str | None = None
    status: str
    sim_kind: str | None = None
    payment_type: str | None = None
    offering_id: str | None = None
    activated_at: datetime | None = None
    balance: BalanceRead


class LinesRead(Output):
    lines: list[LineRead]
    degraded: bool
    """True when some of what the screen shows could not be read now (see ``missing``)."""
    missing: list[str] = Field(default_factory=list)


class UsageDayRead(Output):
    date: date
    data_mb: float = Field(alias="dataMB")
    voice_minutes: float
    sms: int
    charge: MoneyRead


class UsageRead(Output):
    line_id: str
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    status: Freshness
    as_of: datetime | None = None
    days: list[UsageDayRead]


class OrderItemRead(Output):
    id: str
    action: str | None = None
    change: str | None = None
    offering_id: str | None = None
    offering_name: str | None = None
    line_id: str | None = None
    sim_kind: str | None = None
    state: str | None = None


class PartnerNoticeRead(Output):
    """A partner the platform relies on is failing or slow now (the canary saw it): orders that
    need it may take longer than usual."""

    partner: Literal["network-operator", "payments", "billing-platform"]
    status: Literal["slow", "unavailable"]
    message: str
    since: datetime


class OrderView(Output):
    id: str
    title: str
    state: str
    done: bool
    placed_at: datetime
    updated_at: datetime
    items: list[OrderItemRead]
    failure_reason: str | None = None
    partner_notices: list[PartnerNoticeRead] = []
    """On one order not yet done: partners failing now, which may hold it up."""


class OrdersRead(Output):
    orders: list[OrderView]
    total: int


class OfferRead(Output):
    id: str
    name: str
    description: str | None = None
    purchase: str
    product_kind: str | None = None
    payment_type: str | None = None
    sim_kinds: list[str] = Field(default_factory=list)
    price: dict[str, Any] | None = None
    allowance: dict[str, Any] | None = None


class OffersRead(Output):
    offers: list[OfferRead]
    status: Freshness
    partner_notices: list[PartnerNoticeRead] = []
    """Partners failing now: buying still works, but an order may take longer to complete."""


class EsimRead(Output):
    line_id: str
    activation_code: str
    qr_code: str
    """The activation code as a QR code: an SVG image in a ``data:`` URI, ready for ``<img src>``."""


class MeRead(Output):
    customer_id: str


class DemoSessionRead(Output):
    access_token: str
    expires_in: int
