"""Allowance buckets and the airtime balance of each line."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync import statements as sql
from mvno.billing_sync.domain.allowances import AIRTIME_LOW, Bucket
from mvno.billing_sync.repository import rows


class BucketsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_bucket(
        self,
        *,
        subscription_id: str,
        customer_id: str,
        usage_type: str,
        units: str,
        name: str,
        offering_id: str,
        order_id: str,
        order_item_id: str,
        amount: int,
        valid_from: datetime,
        valid_to: datetime,
        at: datetime,
    ) -> None:
        await self.session.execute(
            sql.OPEN_BUCKET,
            {
                "bucket_id": str(uuid.uuid4()),
                "subscription_id": subscription_id,
                "customer_id": customer_id,
                "usage_type": usage_type,
                "units": units,
                "name": name,
                "offering_id": offering_id,
                "order_id": order_id,
                "order_item_id": order_item_id,
                "amount": amount,
                "valid_from": valid_from,
                "valid_to": valid_to,
                "at": at,
            },
        )

    async def credit_airtime(
        self,
        *,
        subscription_id: str,
        customer_id: str,
        order_id: str,
        order_item_id: str,
        amount: Decimal,
        at: datetime,
    ) -> bool:
        """Add a top-up to the line's airtime bucket, once per order item; whether it did."""
        credited = (
            await self.session.execute(
                sql.RECORD_AIRTIME_CREDIT,
                {
                    "order_id": order_id,
                    "order_item_id": order_item_id,
                    "subscription_id": subscription_id,
                    "amount": amount,
                    "at": at,
                },
            )
        ).first()
        if credited is None:
            return False
        await self.session.execute(
            sql.ADD_AIRTIME,
            {
                "bucket_id": f"airtime-{subscription_id}",
                "subscription_id": subscription_id,
                "customer_id": customer_id,
                "amount": amount,
                "at": at,
                "low_threshold": AIRTIME_LOW,
            },
        )
        return True

    async def active_buckets(self, *, subscription_ids: list[str]) -> dict[str, list[Bucket]]:
        """The lines' active buckets, locked for the usage about to consume them."""
        found: dict[str, list[Bucket]] = {}
        for r in rows(
            await self.session.execute(
                sql.ACTIVE_BUCKETS_FOR_UPDATE, {"subscription_ids": subscription_ids}
            )
        ):
            found.setdefault(r["subscription_id"], []).append(
                Bucket(
                    id=r["id"],
                    usage_type=r["usage_type"],
                    initial=Decimal(r["initial_amount"]),
                    remaining=Decimal(r["remaining"]),
                    valid_from=r["valid_from"],
                    valid_to=r["valid_to"],
                    created_at=r["created_at"],
                    status=r["status"],
                    low_notified=r["low_notified"],
                    offering_id=r["offering_id"],
                )
            )
        return found

    async def save_buckets(self, buckets: list[Bucket]) -> None:
        if not buckets:
            return
        await self.session.execute(
            sql.SAVE_BUCKET,
            [
                {
                    "remaining": b.remaining,
                    "status": b.status,
                    "low_notified": b.low_notified,
                    "bucket_id": b.id,
                }
                for b in buckets
            ],
        )

    async def expire_buckets(self, *, at: datetime, limit: int) -> list[dict[str, Any]]:
        return rows(await self.session.execute(sql.EXPIRE_BUCKETS, {"at": at, "limit": limit}))

    async def bucket_page(
        self, *, subscription_id: str, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        total = (
            await self.session.execute(sql.COUNT_BUCKETS, {"subscription_id": subscription_id})
        ).scalar_one()
        page = rows(
            await self.session.execute(
                sql.BUCKETS_PAGE,
                {"subscription_id": subscription_id, "offset": offset, "limit": limit},
            )
        )
        return total, page
