"""HTTP bodies of the admin endpoints that steer the simulators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mvno.simulators.faults import FaultRule
from mvno.simulators.schemas import RequestBody, ResponseBody


class FaultEntry(ResponseBody):
    partner: str
    operation: str | None = Field(description="null: the rule covers every operation")
    rule: FaultRule


class FaultTableRead(ResponseBody):
    rules: list[FaultEntry]
    operations: dict[str, list[str]] = Field(description="Each partner's operation names")


class ResetCreate(RequestBody):
    seed: int | None = Field(default=None, description="A new seed; the configured one if not")


class ResetRead(ResponseBody):
    seed: int
    now: datetime


class ClockAdvance(RequestBody):
    seconds: Annotated[float, Field(gt=0, le=366 * 86_400)]


class ClockRead(ResponseBody):
    now: datetime
    offset_seconds: float


class ActivationSettings(RequestBody):
    delay_seconds: Annotated[float, Field(ge=0, le=3600)] = 0.0
    failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.0


class ActivationSettingsRead(ResponseBody):
    delay_seconds: float
    failure_rate: float


class PortInSettings(RequestBody):
    delay_seconds: Annotated[float, Field(ge=0, le=86_400)] = 0.0


class PortInSettingsRead(ResponseBody):
    delay_seconds: float


class CallbackDeliveryRead(ResponseBody):
    subscription_id: str
    url: str
    event_type: str
    delivered: bool
    attempts: int
    status_code: int | None
    error: str | None
    at: datetime


class CallbackPage(ResponseBody):
    items: list[CallbackDeliveryRead]


class BankAccountUpdate(RequestBody):
    balance_cents: Annotated[int, Field(ge=0, le=10**13)]
    blocked: bool = False


class BankAccountRead(ResponseBody):
    number: str
    balance_cents: int
    held_cents: int
    available_cents: int
    blocked: bool


class BillRunCreate(RequestBody):
    period: Annotated[
        str | None, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    ] = None
