"""Allowance buckets and the airtime balance of each line."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync.buckets import statements as sql
from mvno.billing_sync.domain.allowances import AIRTIME_LOW, Bucket
from mvno.billing_sync.tables import airtime_credits, buckets, rows


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
            insert(buckets)
            .values(
                id=str(uuid.uuid4()),
                subscription_id=subscription_id,
                customer_id=customer_id,
                usage_type=usage_type,
                units=units,
                name=name,
                offering_id=offering_id,
                order_id=order_id,
                order_item_id=order_item_id,
                initial_amount=amount,
                remaining=amount,
                valid_from=valid_from,
                valid_to=valid_to,
                status="active",
                created_at=at,
            )
            .on_conflict_do_nothing()  # the purchase was delivered before
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
                insert(airtime_credits)
                .values(
                    order_id=order_id,
                    order_item_id=order_item_id,
                    subscription_id=subscription_id,
                    amount=amount,
                    credited_at=at,
                )
                .on_conflict_do_nothing()
                .returning(airtime_credits.c.order_id)
            )
        ).first()
        if credited is None:
            return False
        # A top-up that takes the balance back above the threshold re-arms low_notified, so the
        # next crossing is announced again.
        await self.session.execute(
            insert(buckets)
            .values(
                id=f"airtime-{subscription_id}",
                subscription_id=subscription_id,
                customer_id=customer_id,
                usage_type="airtime",
                units="ZAR",
                name="Airtime",
                initial_amount=amount,
                remaining=amount,
                valid_from=at,
                status="active",
                created_at=at,
            )
            .on_conflict_do_update(
                index_elements=[buckets.c.id],
                set_={
                    "initial_amount": buckets.c.initial_amount + amount,
                    "remaining": buckets.c.remaining + amount,
                    "status": "active",
                    "low_notified": and_(
                        buckets.c.low_notified, buckets.c.remaining + amount < AIRTIME_LOW
                    ),
                },
            )
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
        due = buckets.alias("due")
        return rows(
            await self.session.execute(
                update(buckets)
                .where(
                    buckets.c.id.in_(
                        select(due.c.id)
                        .where(due.c.status.in_(("active", "depleted")), due.c.valid_to <= at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                )
                .values(status="expired")
                .returning(buckets)
            )
        )

    async def bucket_page(
        self, *, subscription_id: str, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        of_line = buckets.c.subscription_id == subscription_id
        total = (
            await self.session.execute(select(func.count()).select_from(buckets).where(of_line))
        ).scalar_one()
        page = rows(
            await self.session.execute(
                select(buckets)
                .where(of_line)
                .order_by(
                    (buckets.c.usage_type == "airtime").desc(),  # airtime first
                    buckets.c.valid_to.asc().nulls_first(),
                    buckets.c.created_at,
                    buckets.c.id,
                )
                .offset(offset)
                .limit(limit)
            )
        )
        return total, page
