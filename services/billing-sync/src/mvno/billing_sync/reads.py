"""The read side: buckets and daily usage of one subscription, shaped for the HTTP answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from mvno.billing_sync.schemas import BucketRead, UsageRead
from mvno.billing_sync.unit_of_work import BillingUnitOfWork

Page = tuple[int, list[dict[str, Any]]]


def _amount(value: Decimal, units: str) -> float:
    return float(value.quantize(Decimal("0.01") if units == "ZAR" else Decimal("0.001")))


def bucket_view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    status = row["status"]
    if status != "expired" and row["valid_to"] is not None and row["valid_to"] <= now:
        status = "expired"  # the expiry sweep has not reached it yet
    units = row["units"]
    return BucketRead.model_validate(
        {
            "id": row["id"],
            "usageType": row["usage_type"],
            "name": row["name"],
            "remainingValue": {"amount": _amount(row["remaining"], units), "units": units},
            "initialValue": {"amount": _amount(row["initial_amount"], units), "units": units},
            "validFor": {"startDateTime": row["valid_from"], "endDateTime": row["valid_to"]},
            "status": status,
            "product": {"id": row["subscription_id"]},
            "productOffering": {"id": row["offering_id"]} if row["offering_id"] else None,
        }
    ).model_dump(mode="json", by_alias=True)


def usage_view(row: dict[str, Any]) -> dict[str, Any]:
    return UsageRead.model_validate(
        {
            "id": f"{row['subscription_id']}:{row['usage_date'].isoformat()}",
            "usageDate": row["usage_date"],
            "product": {"id": row["subscription_id"]},
            "usageCharacteristic": [
                {"name": "dataBytes", "value": row["data_bytes"]},
                {"name": "voiceSeconds", "value": row["voice_seconds"]},
                {"name": "smsCount", "value": row["sms_count"]},
            ],
            "ratedProductUsage": [
                {"taxIncludedRatingAmount": {"unit": "ZAR", "value": float(row["charge"])}}
            ],
        }
    ).model_dump(mode="json", by_alias=True)


async def buckets_of(
    unit_of_work: Callable[[], BillingUnitOfWork], *, subscription_id: str, offset: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    async with unit_of_work() as uow:
        total, rows = await uow.buckets.bucket_page(
            subscription_id=subscription_id, offset=offset, limit=limit
        )
    now = datetime.now(UTC)
    return total, [bucket_view(row, now) for row in rows]


async def usage_of(
    unit_of_work: Callable[[], BillingUnitOfWork],
    *,
    subscription_id: str,
    since: date | None,
    until: date | None,
    offset: int,
    limit: int,
) -> tuple[int, list[dict[str, Any]]]:
    async with unit_of_work() as uow:
        total, rows = await uow.usage.usage_page(
            subscription_id=subscription_id, since=since, until=until, offset=offset, limit=limit
        )
    return total, [usage_view(row) for row in rows]
