"""HTTP bodies of the network operator's API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, Field

from mvno.simulators.mno.numbers import NumberStatus, ReservationStatus
from mvno.simulators.mno.ports import PortInStatus
from mvno.simulators.mno.rica import IdentityKind, RicaRegistration
from mvno.simulators.mno.sims import SimKind, SimStatus
from mvno.simulators.mno.subscriptions import SubscriptionStatus
from mvno.simulators.mno.usage import UsageKind
from mvno.simulators.schemas import RequestBody, ResponseBody

Msisdn = Annotated[
    str,
    Field(
        pattern=r"^\+27[0-9]{9}$",
        description="South African mobile number in E.164",
        examples=["+27821234567"],
    ),
]
Iccid = Annotated[
    str, Field(min_length=1, max_length=22, description="19 or 20 digits with a Luhn check digit")
]
TariffCode = Annotated[
    str, Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$", examples=["PREPAID_DATA_1GB"])
]
ShortText = Annotated[str, Field(max_length=200)]


class NumberRead(ResponseBody):
    msisdn: str
    status: NumberStatus


class NumberPage(ResponseBody):
    items: list[NumberRead]


class PortInCreate(RequestBody):
    msisdn: Msisdn = Field(description="The number to bring from another network, in E.164")


class PortInRead(ResponseBody):
    id: str
    msisdn: str
    status: PortInStatus
    requested_at: datetime
    completes_at: datetime
    completed_at: datetime | None
    reservation_id: str | None = Field(
        description="Once completed: the reservation holding the number for activation"
    )
    rejection_reason: str | None


class ReservationCreate(RequestBody):
    msisdn: Msisdn | None = Field(default=None, description="A chosen number; any free one if not")
    hold_seconds: int | None = Field(
        default=None, ge=1, le=30 * 86_400, description="How long to hold it; the default if not"
    )


class ReservationRead(ResponseBody):
    id: str
    msisdn: str
    status: ReservationStatus
    reserved_at: datetime
    expires_at: datetime


class SimRead(ResponseBody):
    iccid: str
    kind: SimKind
    status: SimStatus
    activation_code: str | None = Field(
        default=None, description="eSIM only: LPA:1$<SM-DP+ address>$<matching id>"
    )
    matching_id: str | None = None
    subscription_id: str | None = None


class SimPage(ResponseBody):
    items: list[SimRead]


class AddressCreate(RequestBody):
    line1: ShortText
    line2: ShortText | None = None
    suburb: ShortText | None = None
    city: ShortText
    postal_code: Annotated[str, Field(max_length=10)]


class RicaRegistrationCreate(RequestBody):
    msisdn: Msisdn
    id_number: Annotated[str | None, Field(max_length=20, description="South African ID")] = None
    passport_number: Annotated[str | None, Field(max_length=20)] = None
    passport_country: Annotated[
        str | None, Field(max_length=3, description="ISO 3166-1 alpha-2 or alpha-3")
    ] = None
    full_name: ShortText
    residential_address: AddressCreate


class RicaRegistrationRead(ResponseBody):
    """No personal data comes back beyond what identifies the registration."""

    id: str
    msisdn: str
    identity_type: IdentityKind
    identity_country: str
    identity_number_last_digits: str
    registered_at: datetime

    @classmethod
    def of(cls, registration: RicaRegistration) -> RicaRegistrationRead:
        return cls(
            id=registration.id,
            msisdn=registration.msisdn,
            identity_type=registration.identity.kind,
            identity_country=registration.identity.country,
            identity_number_last_digits=registration.identity.number[-3:],
            registered_at=registration.registered_at,
        )


class SubscriptionCreate(RequestBody):
    msisdn: Msisdn
    iccid: Iccid = Field(description="A physical SIM in stock or an allocated eSIM profile")
    tariff_code: TariffCode
    callback_url: AnyHttpUrl | None = Field(
        default=None, description="Where the outcome of an asynchronous activation is POSTed"
    )


class SubscriptionRead(ResponseBody):
    id: str
    msisdn: str
    iccid: str
    sim_kind: SimKind
    tariff_code: str
    status: SubscriptionStatus
    created_at: datetime
    activated_at: datetime | None
    suspended_at: datetime | None
    terminated_at: datetime | None
    failure_reason: str | None
    suspension_reason: str | None


class SuspensionCreate(RequestBody):
    reason: ShortText | None = None


class SimSwapCreate(RequestBody):
    iccid: Iccid


class UsageRecordRead(ResponseBody):
    sequence: int
    id: str
    subscription_id: str
    msisdn: str
    kind: UsageKind
    started_at: datetime
    quantity: int
    unit: str


class UsagePage(ResponseBody):
    records: list[UsageRecordRead]
    next_cursor: str = Field(description="Pass as cursor to read the records after these")
