"""HTTP models, named and shaped as TMF620 names them (camelCase, ``@type``, refs with ``href``).

Inputs refuse unknown members so that a typo is a 422, not a silently ignored change. Outputs
declare every member optional, because ``fields=`` may leave any of them out.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from mvno.catalog.domain.commands import (
    CategoryTerms,
    FeedOffering,
    ImportFeed,
    OfferingTerms,
    PriceTerms,
    SpecificationTerms,
)
from mvno.catalog.domain.model import (
    Category,
    Channel,
    LifecycleStatus,
    Offering,
    PaymentType,
    Price,
    PriceType,
    ProductKind,
    SimKind,
    Specification,
    UnitOfMeasure,
    ValidFor,
)
from mvno.common.tmf import Id, TmfInput, TmfOutput, TmfRef

PREFIX = "/tmf-api/productCatalogManagement/v4"

Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2),
    # TMF620 Money.value is a JSON number; cents survive the float exactly at these magnitudes.
    PlainSerializer(float, return_type=float, when_used="json"),
]
# PostgreSQL text cannot hold NUL: refuse it as input rather than fail on insert.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]+$"),
]
Text = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]

CHANNEL_NAMES: dict[str, str] = {
    "app": "Banking app",
    "web": "Internet banking",
    "branch": "Branch",
    "call_centre": "Call centre",
    "ussd": "USSD",
    "partner": "Partner",
}


class TimePeriod(TmfInput):
    start_date_time: AwareDatetime
    end_date_time: AwareDatetime | None = None

    def to_domain(self) -> ValidFor:
        return ValidFor(self.start_date_time, self.end_date_time)


class Money(TmfInput):
    unit: Literal["ZAR"] = "ZAR"
    value: Amount


class Quantity(TmfInput):
    amount: Literal[1] = 1
    units: UnitOfMeasure


# --- category -------------------------------------------------------------------------------


class CategoryCreate(TmfInput):
    name: Name
    description: Text | None = None
    parent_id: Id | None = None

    def to_terms(self) -> CategoryTerms:
        return CategoryTerms(self.name, self.description, self.parent_id)


class CategoryUpdate(TmfInput):
    not_null = ("name",)

    name: Name | None = None
    description: Text | None = None
    parent_id: Id | None = None

    def changes(self) -> dict[str, Any]:
        return _set_fields(self, ("name", "description", "parent_id"))


class CategoryRead(TmfOutput):
    id: str
    href: str | None = None
    name: str | None = None
    description: str | None = None
    parent_id: str | None = None
    is_root: bool | None = None
    lifecycle_status: str | None = None
    version: str | None = None
    last_update: datetime | None = None
    type_: str = Field(default="Category", alias="@type")

    @classmethod
    def of(cls, category: Category) -> CategoryRead:
        return cls(
            id=category.id,
            href=f"{PREFIX}/category/{category.id}",
            name=category.name,
            description=category.description,
            parent_id=category.parent_id,
            is_root=category.parent_id is None,
            lifecycle_status="Active",
            version=str(category.version),
            last_update=category.last_update,
        )


# --- product specification ------------------------------------------------------------------


class SpecificationCreate(TmfInput):
    name: Name
    description: Text | None = None
    brand: Name | None = None
    product_kind: ProductKind
    payment_type: PaymentType
    sim_kinds: list[SimKind] = Field(default_factory=list, max_length=2)
    data_mb: int = Field(default=0, ge=0, le=10_000_000, alias="dataMB")
    voice_minutes: int = Field(default=0, ge=0, le=1_000_000)
    sms: int = Field(default=0, ge=0, le=1_000_000)
    validity_days: int | None = Field(default=None, ge=1, le=3660)

    def to_terms(self) -> SpecificationTerms:
        return SpecificationTerms(
            name=self.name,
            product_kind=self.product_kind,
            payment_type=self.payment_type,
            description=self.description,
            brand=self.brand,
            sim_kinds=tuple(dict.fromkeys(self.sim_kinds)),
            data_mb=self.data_mb,
            voice_minutes=self.voice_minutes,
            sms=self.sms,
            validity_days=self.validity_days,
        )


class SpecificationUpdate(TmfInput):
    not_null = (
        "name",
        "product_kind",
        "payment_type",
        "sim_kinds",
        "data_mb",
        "voice_minutes",
        "sms",
    )

    name: Name | None = None
    description: Text | None = None
    brand: Name | None = None
    product_kind: ProductKind | None = None
    payment_type: PaymentType | None = None
    sim_kinds: list[SimKind] | None = Field(default=None, max_length=2)
    data_mb: int | None = Field(default=None, ge=0, le=10_000_000, alias="dataMB")
    voice_minutes: int | None = Field(default=None, ge=0, le=1_000_000)
    sms: int | None = Field(default=None, ge=0, le=1_000_000)
    validity_days: int | None = Field(default=None, ge=1, le=3660)

    def changes(self) -> dict[str, Any]:
        changes = _set_fields(
            self,
            (
                "name",
                "description",
                "brand",
                "product_kind",
                "payment_type",
                "sim_kinds",
                "data_mb",
                "voice_minutes",
                "sms",
                "validity_days",
            ),
        )
        if "sim_kinds" in changes:
            changes["sim_kinds"] = tuple(dict.fromkeys(changes["sim_kinds"]))
        return changes


class SpecificationRead(TmfOutput):
    id: str
    href: str | None = None
    name: str | None = None
    description: str | None = None
    brand: str | None = None
    product_kind: str | None = None
    payment_type: str | None = None
    sim_kinds: list[str] | None = None
    data_mb: int | None = Field(default=None, alias="dataMB")
    voice_minutes: int | None = None
    sms: int | None = None
    validity_days: int | None = None
    is_bundle: bool | None = None
    lifecycle_status: str | None = None
    version: str | None = None
    last_update: datetime | None = None
    type_: str = Field(default="MobileProductSpecification", alias="@type")
    base_type: str = Field(default="ProductSpecification", alias="@baseType")

    @classmethod
    def of(cls, specification: Specification) -> SpecificationRead:
        return cls(
            id=specification.id,
            href=f"{PREFIX}/productSpecification/{specification.id}",
            name=specification.name,
            description=specification.description,
            brand=specification.brand,
            product_kind=specification.product_kind,
            payment_type=specification.payment_type,
            sim_kinds=list(specification.sim_kinds),
            data_mb=specification.data_mb,
            voice_minutes=specification.voice_minutes,
            sms=specification.sms,
            validity_days=specification.validity_days,
            is_bundle=False,
            lifecycle_status="Active",
            version=str(specification.version),
            last_update=specification.last_update,
        )


# --- product offering price -----------------------------------------------------------------


class PriceCreate(TmfInput):
    product_offering: TmfRef
    name: Name
    price_type: PriceType
    recurring_charge_period_type: Literal["month"] | None = None
    recurring_charge_period_length: Literal[1] | None = None
    unit_of_measure: Quantity | None = None
    price: Money
    valid_for: PriceStart | None = None

    def to_terms(self) -> PriceTerms:
        return PriceTerms(
            name=self.name,
            price_type=self.price_type,
            amount=self.price.value,
            recurring_period=self.recurring_charge_period_type,
            unit_of_measure=self.unit_of_measure.units if self.unit_of_measure else None,
            starts=self.valid_for.start_date_time if self.valid_for else None,
        )


class PriceStart(TmfInput):
    """A new price's period: it starts then (now when left out) and ends when replaced."""

    start_date_time: AwareDatetime | None = None
    end_date_time: None = None


class MoneyRead(TmfOutput):
    unit: str = "ZAR"
    value: Amount


class TaxItem(TmfOutput):
    tax_category: str = "VAT"
    tax_rate: float
    tax_amount: MoneyRead


class PeriodRead(TmfOutput):
    start_date_time: datetime
    end_date_time: datetime | None = None


class RefRead(TmfOutput):
    id: str
    href: str | None = None
    name: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class PriceRead(TmfOutput):
    id: str
    href: str | None = None
    name: str | None = None
    price_type: str | None = None
    recurring_charge_period_type: str | None = None
    recurring_charge_period_length: int | None = None
    unit_of_measure: dict[str, Any] | None = None
    price: MoneyRead | None = None
    """What the customer pays, VAT included."""
    duty_free_amount: MoneyRead | None = None
    """The same price without VAT."""
    tax: list[TaxItem] | None = None
    valid_for: PeriodRead | None = None
    product_offering: RefRead | None = None
    type_: str = Field(default="ProductOfferingPrice", alias="@type")

    @classmethod
    def of(cls, price: Price) -> PriceRead:
        return cls(
            id=price.id,
            href=f"{PREFIX}/productOfferingPrice/{price.id}",
            name=price.name,
            price_type=price.price_type,
            recurring_charge_period_type=price.recurring_period,
            recurring_charge_period_length=1 if price.recurring_period else None,
            unit_of_measure=(
                {"amount": 1, "units": price.unit_of_measure} if price.unit_of_measure else None
            ),
            price=MoneyRead(value=price.amount),
            duty_free_amount=MoneyRead(value=price.duty_free_amount),
            tax=[
                TaxItem(
                    tax_rate=float(price.tax_rate),
                    tax_amount=MoneyRead(value=price.tax_amount),
                )
            ],
            valid_for=PeriodRead(
                start_date_time=price.valid_for.start, end_date_time=price.valid_for.end
            ),
            product_offering=RefRead(
                id=price.offering_id,
                href=f"{PREFIX}/productOffering/{price.offering_id}",
                referred_type="ProductOffering",
            ),
        )


# --- product offering -----------------------------------------------------------------------


class ChannelRef(TmfInput):
    id: Channel
    href: str | None = None
    name: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class OfferingCreate(TmfInput):
    name: Name
    description: Text | None = None
    is_bundle: bool | None = None
    category: list[TmfRef] = Field(default_factory=list, max_length=1)
    product_specification: TmfRef
    channel: list[ChannelRef] = Field(min_length=1, max_length=6)
    valid_for: TimePeriod
    bundled_product_offering: list[TmfRef] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _bundle_flag_matches(self) -> OfferingCreate:
        _check_bundle_flag(self.is_bundle, self.bundled_product_offering)
        return self

    def to_terms(self) -> OfferingTerms:
        return OfferingTerms(
            name=self.name,
            specification_id=self.product_specification.id,
            channels=tuple(channel.id for channel in self.channel),
            valid_for=self.valid_for.to_domain(),
            description=self.description,
            category_id=self.category[0].id if self.category else None,
            bundled_offering_ids=tuple(ref.id for ref in self.bundled_product_offering),
        )


class OfferingUpdate(TmfInput):
    """A merge patch: members left out stay as they are. ``lifecycleStatus`` moves one step."""

    not_null = ("name", "product_specification", "channel", "valid_for", "lifecycle_status")

    name: Name | None = None
    description: Text | None = None
    is_bundle: bool | None = None
    category: list[TmfRef] | None = Field(default=None, max_length=1)
    product_specification: TmfRef | None = None
    channel: list[ChannelRef] | None = Field(default=None, min_length=1, max_length=6)
    valid_for: TimePeriod | None = None
    bundled_product_offering: list[TmfRef] | None = Field(default=None, max_length=20)
    lifecycle_status: LifecycleStatus | None = None

    @model_validator(mode="after")
    def _bundle_flag_matches(self) -> OfferingUpdate:
        if self.bundled_product_offering is not None:
            _check_bundle_flag(self.is_bundle, self.bundled_product_offering)
        return self

    def changes(self) -> dict[str, Any]:
        given = self.model_fields_set
        changes: dict[str, Any] = {}
        if "name" in given:
            changes["name"] = self.name
        if "description" in given:
            changes["description"] = self.description
        if "category" in given:
            changes["category_id"] = self.category[0].id if self.category else None
        if self.product_specification is not None:
            changes["specification_id"] = self.product_specification.id
        if self.channel is not None:
            changes["channels"] = tuple(channel.id for channel in self.channel)
        if self.valid_for is not None:
            changes["valid_for"] = self.valid_for.to_domain()
        if "bundled_product_offering" in given:
            changes["bundled_offering_ids"] = tuple(
                ref.id for ref in self.bundled_product_offering or ()
            )
        return changes


class OfferingRead(TmfOutput):
    id: str
    href: str | None = None
    name: str | None = None
    description: str | None = None
    is_bundle: bool | None = None
    is_sellable: bool | None = None
    lifecycle_status: str | None = None
    version: str | None = None
    last_update: datetime | None = None
    valid_for: PeriodRead | None = None
    category: list[RefRead] | None = None
    channel: list[RefRead] | None = None
    product_specification: RefRead | None = None
    bundled_product_offering: list[RefRead] | None = None
    product_offering_price: list[PriceRead] | None = None
    """The prices in force now, and any already set to open later."""
    type_: str = Field(default="ProductOffering", alias="@type")

    @classmethod
    def of(cls, offering: Offering, at: datetime) -> OfferingRead:
        return cls(
            id=offering.id,
            href=f"{PREFIX}/productOffering/{offering.id}",
            name=offering.name,
            description=offering.description,
            is_bundle=offering.is_bundle,
            is_sellable=offering.is_sellable(at),
            lifecycle_status=str(offering.lifecycle_status),
            version=str(offering.version),
            last_update=offering.last_update,
            valid_for=PeriodRead(
                start_date_time=offering.valid_for.start, end_date_time=offering.valid_for.end
            ),
            category=(
                [
                    RefRead(
                        id=offering.category_id,
                        href=f"{PREFIX}/category/{offering.category_id}",
                        referred_type="Category",
                    )
                ]
                if offering.category_id
                else []
            ),
            channel=[
                RefRead(id=channel, name=CHANNEL_NAMES[channel], referred_type="Channel")
                for channel in offering.channels
            ],
            product_specification=RefRead(
                id=offering.specification_id,
                href=f"{PREFIX}/productSpecification/{offering.specification_id}",
                referred_type="ProductSpecification",
            ),
            bundled_product_offering=[
                RefRead(
                    id=bundled,
                    href=f"{PREFIX}/productOffering/{bundled}",
                    referred_type="ProductOffering",
                )
                for bundled in offering.bundled_offering_ids
            ],
            product_offering_price=[PriceRead.of(price) for price in offering.open_prices(at)],
        )


# --- audit and feeds ------------------------------------------------------------------------


class AuditRecordRead(TmfOutput):
    id: int
    at: datetime
    actor: str
    client_id: str | None = None
    request_id: str | None = None
    action: str
    entity_type: str
    entity_id: str
    changes: dict[str, Any]


class FeedCategory(TmfInput):
    id: Id
    name: Name
    description: Text | None = None
    parent_id: Id | None = None


class FeedSpecification(SpecificationCreate):
    id: Id


class FeedPrice(TmfInput):
    name: Name
    price_type: PriceType
    recurring_charge_period_type: Literal["month"] | None = None
    unit_of_measure: UnitOfMeasure | None = None
    amount: Amount
    """VAT included, in rand."""


class FeedOfferingItem(TmfInput):
    id: Id
    name: Name
    description: Text | None = None
    category_id: Id | None = None
    product_specification_id: Id
    channel: list[Channel] = Field(min_length=1, max_length=6)
    valid_for: TimePeriod
    bundled_product_offering_ids: list[Id] = Field(default_factory=list, max_length=20)
    prices: list[FeedPrice] = Field(default_factory=list, max_length=20)
    lifecycle_status: LifecycleStatus = LifecycleStatus.LAUNCHED


class FeedDocument(TmfInput):
    """A partner's product feed: the catalogue it wants, applied as a whole."""

    partner: Name
    categories: list[FeedCategory] = Field(default_factory=list, max_length=500)
    product_specifications: list[FeedSpecification] = Field(default_factory=list, max_length=500)
    product_offerings: list[FeedOfferingItem] = Field(default_factory=list, max_length=2000)

    def to_command(self) -> ImportFeed:
        return ImportFeed(
            partner=self.partner,
            categories=tuple(
                (c.id, CategoryTerms(c.name, c.description, c.parent_id)) for c in self.categories
            ),
            specifications=tuple((s.id, s.to_terms()) for s in self.product_specifications),
            offerings=tuple(
                FeedOffering(
                    offering_id=o.id,
                    terms=OfferingTerms(
                        name=o.name,
                        specification_id=o.product_specification_id,
                        channels=tuple(o.channel),
                        valid_for=o.valid_for.to_domain(),
                        description=o.description,
                        category_id=o.category_id,
                        bundled_offering_ids=tuple(o.bundled_product_offering_ids),
                    ),
                    prices=tuple(
                        PriceTerms(
                            name=p.name,
                            price_type=p.price_type,
                            amount=p.amount,
                            recurring_period=p.recurring_charge_period_type,
                            unit_of_measure=p.unit_of_measure,
                        )
                        for p in o.prices
                    ),
                    lifecycle_status=o.lifecycle_status,
                )
                for o in self.product_offerings
            ),
        )


class FeedImportResult(TmfOutput):
    partner: str
    created: dict[str, list[str]]
    updated: dict[str, list[str]]
    unchanged: dict[str, list[str]]
    prices_opened: list[str]
    transitions: list[str]


def _check_bundle_flag(is_bundle: bool | None, bundled: list[TmfRef]) -> None:
    if is_bundle is not None and is_bundle != bool(bundled):
        raise ValueError("isBundle must be true exactly when bundledProductOffering is not empty")


def _set_fields(model: BaseModel, names: tuple[str, ...]) -> dict[str, Any]:
    """The members a merge patch sets (``null`` included: it clears an optional member)."""
    return {name: getattr(model, name) for name in names if name in model.model_fields_set}


PriceCreate.model_rebuild()
