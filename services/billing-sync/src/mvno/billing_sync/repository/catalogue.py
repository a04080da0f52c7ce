"""The copy of the catalogue billing-sync keeps from the catalog's events: offerings and their
prices (the monthly charge billed, the usage prices rated)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync import statements as sql
from mvno.billing_sync.domain.allowances import PricePeriod
from mvno.billing_sync.repository import rows
from mvno.common.events.catalog import OfferingPrice


class CatalogueCopyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
        await self.session.execute(
            sql.PUT_OFFERING,
            {
                "offering_id": offering_id,
                "version": version,
                "name": name,
                "payment_type": payment_type,
                "product_kind": product_kind,
                "at": at,
            },
        )

    async def retire_offering(self, *, offering_id: str, version: str, at: datetime) -> None:
        await self.session.execute(
            sql.RETIRE_OFFERING, {"offering_id": offering_id, "version": version, "at": at}
        )

    async def put_price(self, *, offering_id: str, price: OfferingPrice) -> None:
        await self.session.execute(
            sql.PUT_PRICE,
            {
                "price_id": price.price_id,
                "offering_id": offering_id,
                "price_type": price.price_type,
                "recurring_period": price.recurring_period,
                "unit_of_measure": price.unit_of_measure,
                "amount": price.tax_included_amount.amount,
                "valid_from": price.valid_from,
                "valid_to": price.valid_to,
            },
        )

    async def close_price(self, *, price_id: str, at: datetime) -> None:
        await self.session.execute(sql.CLOSE_PRICE, {"price_id": price_id, "at": at})

    async def monthly_charge(self, *, offering_id: str) -> Decimal:
        value = (
            await self.session.execute(sql.MONTHLY_CHARGE, {"offering_id": offering_id})
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
