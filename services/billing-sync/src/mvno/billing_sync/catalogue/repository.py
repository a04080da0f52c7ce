"""The copy of the catalogue billing-sync keeps from the catalog's events: offerings and their
prices (the monthly charge billed, the usage prices rated)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync.catalogue import statements as sql
from mvno.billing_sync.domain.allowances import PricePeriod
from mvno.billing_sync.tables import offering_copies, offering_price_copies, rows
from mvno.common.events.catalog import OfferingPrice


class CatalogueCopyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def holds_any(self) -> bool:
        """Whether the copy has received any offering (launched or retired) from catalog."""
        found = await self.session.execute(select(offering_copies.c.offering_id).limit(1))
        return found.first() is not None

    async def put_offering(
        self,
        *,
        offering_id: str,
        version: str,
        name: str,
        payment_type: str,
        product_kind: str | None,
        at: datetime,
    ) -> None:
        launched = insert(offering_copies).values(
            offering_id=offering_id,
            version=version,
            name=name,
            status="launched",
            payment_type=payment_type,
            product_kind=product_kind,
            updated_at=at,
        )
        await self.session.execute(
            launched.on_conflict_do_update(
                index_elements=[offering_copies.c.offering_id],
                set_={
                    "version": launched.excluded.version,
                    "name": launched.excluded.name,
                    "status": "launched",
                    "payment_type": launched.excluded.payment_type,
                    "product_kind": launched.excluded.product_kind,
                    "updated_at": launched.excluded.updated_at,
                },
                where=offering_copies.c.status != "retired",  # a retired offering stays retired
            )
        )

    async def retire_offering(self, *, offering_id: str, version: str, at: datetime) -> None:
        await self.session.execute(
            insert(offering_copies)
            .values(
                offering_id=offering_id,
                version=version,
                name="",
                status="retired",
                payment_type="prepaid",
                updated_at=at,
            )
            .on_conflict_do_update(
                index_elements=[offering_copies.c.offering_id],
                set_={"status": "retired", "updated_at": at},
            )
        )

    async def put_price(self, *, offering_id: str, price: OfferingPrice) -> None:
        put = insert(offering_price_copies).values(
            price_id=price.price_id,
            offering_id=offering_id,
            price_type=price.price_type,
            recurring_period=price.recurring_period,
            unit_of_measure=price.unit_of_measure,
            tax_included_amount=price.tax_included_amount.amount,
            valid_from=price.valid_from,
            valid_to=price.valid_to,
        )
        await self.session.execute(
            put.on_conflict_do_update(
                index_elements=[offering_price_copies.c.price_id],
                set_={
                    "tax_included_amount": put.excluded.tax_included_amount,
                    "valid_to": put.excluded.valid_to,
                },
            )
        )

    async def close_price(self, *, price_id: str, at: datetime) -> None:
        await self.session.execute(
            update(offering_price_copies)
            .where(
                offering_price_copies.c.price_id == price_id,
                or_(
                    offering_price_copies.c.valid_to.is_(None),
                    offering_price_copies.c.valid_to > at,
                ),
            )
            .values(valid_to=at)
        )

    async def monthly_charge(self, *, offering_id: str) -> Decimal:
        prices = offering_price_copies.c
        value = (
            await self.session.execute(
                select(prices.tax_included_amount)
                .where(
                    prices.offering_id == offering_id,
                    prices.price_type == "recurring",
                    prices.valid_from <= func.now(),
                    or_(prices.valid_to.is_(None), prices.valid_to > func.now()),
                )
                .order_by(prices.valid_from.desc())
                .limit(1)
            )
        ).scalar()
        return Decimal(value) if value is not None else Decimal(0)

    async def usage_prices(
        self, *, subscription_ids: list[str]
    ) -> dict[tuple[str, str], list[PricePeriod]]:
        """(subscription, unit of measure) -> every usage price of its tariff, with validity."""
        found: dict[tuple[str, str], list[PricePeriod]] = {}
        for r in rows(
            await self.session.execute(
                sql.USAGE_PRICES_OF_SUBSCRIPTIONS, {"subscription_ids": subscription_ids}
            )
        ):
            found.setdefault((r["subscription_id"], r["unit_of_measure"]), []).append(
                PricePeriod(r["valid_from"], r["valid_to"], Decimal(r["tax_included_amount"]))
            )
        return found
