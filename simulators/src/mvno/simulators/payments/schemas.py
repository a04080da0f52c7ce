"""HTTP bodies of the bank's payment API. Money is in ZAR cents, as integers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mvno.simulators.payments.bank import PaymentStatus
from mvno.simulators.schemas import RequestBody, ResponseBody

Cents = Annotated[int, Field(gt=0, le=10**12, description="ZAR cents")]
AccountNumber = Annotated[
    str, Field(pattern=r"^[0-9]{6,16}$", description="The customer's bank account number")
]


class PaymentCreate(RequestBody):
    account_number: AccountNumber
    amount_cents: Cents
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "ZAR"
    reference: Annotated[str, Field(min_length=1, max_length=100)]


class CaptureCreate(RequestBody):
    amount_cents: Cents | None = Field(default=None, description="Part of it; all if not given")


class RefundCreate(RequestBody):
    amount_cents: Cents | None = Field(default=None, description="Part of it; the rest if not")


class RefundRead(ResponseBody):
    id: str
    amount_cents: int
    created_at: datetime


class PaymentRead(ResponseBody):
    id: str
    account_number: str
    amount_cents: int
    currency: str
    reference: str
    status: PaymentStatus
    created_at: datetime
    captured_cents: int
    refunded_cents: int
    captured_at: datetime | None
    voided_at: datetime | None
    refunds: list[RefundRead]
