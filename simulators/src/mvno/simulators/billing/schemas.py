"""HTTP bodies of the billing platform's API. Money is in ZAR cents, as integers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mvno.simulators.billing.platform import (
    AccountStatus,
    BillingAccount,
    BillingSubscription,
    BillingSubscriptionStatus,
)
from mvno.simulators.schemas import RequestBody, ResponseBody

Cents = Annotated[int, Field(ge=0, le=10**10, description="ZAR cents")]
TariffCode = Annotated[
    str, Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,31}$", examples=["PREPAID_DATA_1GB"])
]


class AccountCreate(RequestBody):
    customer_ref: Annotated[
        str, Field(min_length=1, max_length=64, description="The platform's customer id")
    ]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    currency: Annotated[str, Field(pattern=r"^ZAR$")] = "ZAR"


class SubscriptionCreate(RequestBody):
    msisdn: Annotated[str, Field(pattern=r"^\+27[0-9]{9}$", examples=["+27821234567"])]
    tariff_code: TariffCode
    monthly_charge_cents: Cents
    external_ref: Annotated[
        str | None, Field(max_length=64, description="The platform's subscription id")
    ] = None


class TariffChange(RequestBody):
    tariff_code: TariffCode
    monthly_charge_cents: Cents


class TariffPeriodRead(ResponseBody):
    tariff_code: str
    monthly_charge_cents: int
    since: datetime


class SubscriptionRead(ResponseBody):
    id: str
    account_id: str
    msisdn: str
    tariff_code: str
    monthly_charge_cents: int
    status: BillingSubscriptionStatus
    started_at: datetime
    ended_at: datetime | None
    external_ref: str | None
    tariff_history: list[TariffPeriodRead]


class AccountRead(ResponseBody):
    id: str
    customer_ref: str
    name: str
    currency: str
    status: AccountStatus
    created_at: datetime
    closed_at: datetime | None
    subscriptions: list[SubscriptionRead]

    @classmethod
    def of(
        cls, account: BillingAccount, subscriptions: dict[str, BillingSubscription]
    ) -> AccountRead:
        return cls(
            id=account.id,
            customer_ref=account.customer_ref,
            name=account.name,
            currency=account.currency,
            status=account.status,
            created_at=account.created_at,
            closed_at=account.closed_at,
            subscriptions=[
                SubscriptionRead.model_validate(subscriptions[i]) for i in account.subscription_ids
            ],
        )


class AccountPage(ResponseBody):
    items: list[AccountRead]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class InvoiceLineRead(ResponseBody):
    subscription_id: str
    msisdn: str
    tariff_code: str
    amount_cents: int


class InvoiceRead(ResponseBody):
    id: str
    account_id: str
    period: str
    issued_at: datetime
    due_at: datetime
    currency: str
    lines: list[InvoiceLineRead]
    subtotal_cents: int
    vat_cents: int
    total_cents: int


class InvoicePage(ResponseBody):
    items: list[InvoiceRead]
