"""HTTP answers of billing-sync: TMF654-style buckets and TMF635-style daily usage summaries.

Amounts are JSON numbers, times RFC 3339 UTC (the contract agreed with portal-api).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BALANCE_PREFIX = "/tmf-api/balanceManagement/v4"
USAGE_PREFIX = "/tmf-api/usageManagement/v4"


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Quantity(_Out):
    amount: float
    units: Literal["MB", "minute", "SMS", "ZAR"]


class ValidFor(_Out):
    start_date_time: datetime = Field(alias="startDateTime")
    end_date_time: datetime | None = Field(alias="endDateTime")


class Ref(_Out):
    id: str


class BucketRead(_Out):
    id: str
    usage_type: Literal["data", "voice", "sms", "airtime"] = Field(alias="usageType")
    name: str
    remaining_value: Quantity = Field(alias="remainingValue")
    initial_value: Quantity = Field(alias="initialValue")
    valid_for: ValidFor = Field(alias="validFor")
    status: Literal["active", "depleted", "expired"]
    product: Ref
    product_offering: Ref | None = Field(alias="productOffering")


class Characteristic(_Out):
    name: Literal["dataBytes", "voiceSeconds", "smsCount"]
    value: int


class Money(_Out):
    unit: Literal["ZAR"] = "ZAR"
    value: float


class RatedProductUsage(_Out):
    tax_included_rating_amount: Money = Field(alias="taxIncludedRatingAmount")


class UsageRead(_Out):
    id: str
    usage_date: date = Field(alias="usageDate")
    status: Literal["rated"] = "rated"
    product: Ref
    usage_characteristic: list[Characteristic] = Field(alias="usageCharacteristic")
    rated_product_usage: list[RatedProductUsage] = Field(alias="ratedProductUsage")
