"""Outbound HTTP: the billing platform's API and the network operator's usage API.

Each is a :class:`~mvno.common.partners.Partner` (its own circuit breaker, timeouts, problems
raised as :class:`~mvno.common.partners.PartnerError`) with the calls billing-sync makes to it.
Every write carries the Idempotency-Key its caller gives, so a retry after a lost answer gets the
first answer back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from purgatory import AsyncCircuitBreakerFactory

from mvno.billing_sync.domain.accounts import BilledLine
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.common.partners import Partner, PartnerError


class BillingPlatform(Partner):
    """The billing platform: accounts, and the lines (its "subscriptions") billed on them."""

    async def open_account(self, *, customer_id: str, key: str) -> str:
        """The customer's open account: opened now, or the one they already have (a customer has
        one open account; the platform answers ``409 account-exists`` naming it)."""
        try:
            account = await self.call(
                "POST",
                "/accounts",
                key=key,
                json={
                    "customerRef": customer_id,
                    "name": f"customer {customer_id}",
                    "currency": "ZAR",
                },
            )
            return str(account["id"])
        except PartnerError as error:
            if error.slug != "account-exists" or not error.problem.get("accountId"):
                raise
            return str(error.problem["accountId"])

    async def bill_line(
        self,
        *,
        account_id: str,
        msisdn: str,
        tariff_code: str,
        monthly_charge_cents: int,
        subscription_id: str,
        key: str,
    ) -> tuple[str, str]:
        """(account id, billed line id) of the line billed on ``account_id``.

        A number the platform already bills for this very subscription (an earlier attempt whose
        answer was lost, or a repair) is taken as it is; billed for another, it is refused.
        """
        try:
            billed = await self.call(
                "POST",
                f"/accounts/{account_id}/subscriptions",
                key=key,
                json={
                    "msisdn": msisdn,
                    "tariffCode": tariff_code,
                    "monthlyChargeCents": monthly_charge_cents,
                    "externalRef": subscription_id,
                },
            )
            return account_id, str(billed["id"])
        except PartnerError as error:
            if error.slug != "msisdn-billed" or not error.problem.get("subscriptionId"):
                raise
            existing = await self.call("GET", f"/subscriptions/{error.problem['subscriptionId']}")
            if existing.get("externalRef") != subscription_id:
                raise PartnerError(
                    "the number is still billed on another line", retryable=False
                ) from None
            return str(existing["accountId"]), str(existing["id"])

    async def change_tariff(
        self, *, billed_line_id: str, tariff_code: str, monthly_charge_cents: int, key: str
    ) -> None:
        await self.call(
            "POST",
            f"/subscriptions/{billed_line_id}/tariff",
            key=key,
            json={"tariffCode": tariff_code, "monthlyChargeCents": monthly_charge_cents},
        )

    async def end_line(self, *, billed_line_id: str, key: str) -> None:
        await self.call("POST", f"/subscriptions/{billed_line_id}/end", key=key)

    async def billed_lines(self) -> list[BilledLine]:
        """Every line the platform bills, on every account, page by page."""
        lines: list[BilledLine] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = await self.call("GET", "/accounts", params=params)
            for account in page["items"]:
                for sub in account["subscriptions"]:
                    lines.append(
                        BilledLine(
                            billing_subscription_id=sub["id"],
                            billing_account_id=account["id"],
                            external_ref=sub.get("externalRef"),
                            msisdn=sub["msisdn"],
                            tariff_code=sub["tariffCode"],
                            status=sub["status"],
                        )
                    )
            cursor = page.get("nextCursor")
            if not cursor:
                return lines


@dataclass(frozen=True)
class UsagePage:
    records: list[dict[str, Any]]
    next_cursor: str | None
    """Where the page after this one starts; ``None`` on an empty page."""


class NetworkOperator(Partner):
    """The network operator's usage API, read forward from a cursor."""

    async def usage_records(self, *, cursor: str, limit: int) -> UsagePage:
        page = await self.call("GET", "/usage-records", params={"cursor": cursor, "limit": limit})
        records: list[dict[str, Any]] = page.get("records", [])
        return UsagePage(records, str(page["nextCursor"]) if records else None)


@dataclass
class Partners:
    billing: BillingPlatform
    network: NetworkOperator


def open_partners(settings: BillingSyncSettings, http: aiohttp.ClientSession) -> Partners:
    breakers = AsyncCircuitBreakerFactory(
        default_threshold=settings.circuit_failure_threshold,
        default_ttl=settings.circuit_open_seconds,
    )
    return Partners(
        billing=BillingPlatform("billing platform", http, settings.billing_platform_url, breakers),
        network=NetworkOperator("network operator", http, settings.network_operator_url, breakers),
    )
