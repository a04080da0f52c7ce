"""The account sync: carries queued operations to the billing platform, one at a time per line.

Each operation runs in its own transaction holding its row lock (``FOR UPDATE SKIP LOCKED``), so
several workers share the work and none runs the same operation twice at once. Every call has a
deterministic Idempotency-Key (operation id and step): a retry after a lost answer gets the first
answer back. A retryable failure waits (exponential backoff with jitter) and tries again; when the
attempts are spent, or the billing platform refuses, ``billing.account.sync_failed`` is published.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from mvno.billing_sync.clients import BillingPlatform
from mvno.billing_sync.domain.accounts import cents, idempotency_key, retry_delay, tariff_code
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.events.billing import AccountCreated, AccountSyncFailed
from mvno.common.partners import PartnerError
from mvno.common.tracing import continued_span

_log = logging.getLogger(__name__)


class AccountSync:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], BillingUnitOfWork],
        billing: BillingPlatform,
        settings: BillingSyncSettings,
        rng: random.Random | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._billing = billing
        self._settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.run_due()
            except Exception:
                _log.exception("account sync pass failed; trying again")
                done = 0
            if done == 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.sync_poll_seconds)

    async def run_due(self, limit: int = 10) -> int:
        """Run up to ``limit`` due operations, one transaction each; returns how many were tried."""
        tried = 0
        for _ in range(limit):
            async with self._unit_of_work() as uow:
                due = await uow.accounts.take_due_operations(limit=1)
                if not due:
                    break
                op = due[0]
                with continued_span(
                    f"billing-sync {op['operation']}",
                    op.get("trace_context"),
                    order_id=op["order_id"],
                    attributes={"mvno.subscription_id": op["subscription_id"]},
                ):
                    await self._run_one(uow, op)
                    await uow.commit()
                tried += 1
        return tried

    async def _run_one(self, uow: BillingUnitOfWork, op: dict[str, Any]) -> None:
        accounts = uow.accounts
        line = await accounts.subscription(subscription_id=op["subscription_id"])
        if line is None:
            # Its activation has not arrived (SQS reorders); an operation before it waits.
            await accounts.postpone_operation(operation_id=op["id"], delay=1.0)
            return
        if op["operation"] != "create" and line["billing_subscription_id"] is None:
            if await accounts.create_failed(subscription_id=op["subscription_id"]):
                await self._fail(uow, op, line, "the line has no billing account")
            else:
                await accounts.postpone_operation(operation_id=op["id"], delay=1.0)
            return
        try:
            created = await self._call(uow, op, line)
        except PartnerError as error:
            attempts = op["attempts"] + 1
            if error.retryable and attempts < self._settings.sync_attempts:
                delay = retry_delay(
                    attempts,
                    base=self._settings.sync_retry_base_seconds,
                    maximum=self._settings.sync_retry_max_seconds,
                    rng=self._rng,
                )
                _log.warning(
                    "billing %s of %s failed (%s); retry %d in %.1fs",
                    op["operation"],
                    op["subscription_id"],
                    error.reason,
                    attempts,
                    delay,
                )
                await accounts.retry_operation(
                    operation_id=op["id"], delay=delay, error=error.reason
                )
            else:
                await self._fail(uow, op, line, error.reason)
            return
        await accounts.finish_operation(operation_id=op["id"], status="done")
        if created is not None:
            uow.publish(created)

    async def _fail(
        self,
        uow: BillingUnitOfWork,
        op: dict[str, Any],
        line: dict[str, Any],
        reason: str,
    ) -> None:
        _log.error(
            "billing %s of %s failed for good: %s", op["operation"], op["subscription_id"], reason
        )
        await uow.accounts.finish_operation(operation_id=op["id"], status="failed", error=reason)
        uow.publish(
            AccountSyncFailed(
                subscription_id=op["subscription_id"],
                customer_id=line["customer_id"],
                order_id=op["order_id"],
                operation=op["operation"],
                reason=reason,
            )
        )

    async def _call(
        self, uow: BillingUnitOfWork, op: dict[str, Any], line: dict[str, Any]
    ) -> AccountCreated | None:
        operation = op["operation"]
        if operation == "create":
            account_id, billed_id = await open_billing(
                self._billing,
                uow,
                line,
                key_prefix=str(op["id"]),
                offering_id=op["offering_id"] or line["offering_id"],
            )
            await uow.accounts.record_billing(
                subscription_id=line["subscription_id"],
                billing_account_id=account_id,
                billing_subscription_id=billed_id,
            )
            return AccountCreated(
                billing_account_id=account_id,
                subscription_id=line["subscription_id"],
                customer_id=line["customer_id"],
                order_id=op["order_id"],
            )
        if operation == "change_tariff":
            offering_id = op["offering_id"] or line["offering_id"]
            await self._billing.change_tariff(
                billed_line_id=line["billing_subscription_id"],
                tariff_code=tariff_code(offering_id),
                monthly_charge_cents=cents(
                    await uow.catalogue.monthly_charge(offering_id=offering_id)
                ),
                key=idempotency_key(op["id"], "tariff"),
            )
        elif operation == "terminate":
            await self._billing.end_line(
                billed_line_id=line["billing_subscription_id"],
                key=idempotency_key(op["id"], "end"),
            )
        # suspend / resume: the billing platform bills a barred line as usual (it has no
        # suspension), so nothing is owed to it; the copy's status changed when the event came.
        return None


async def open_billing(
    billing: BillingPlatform,
    uow: BillingUnitOfWork,
    line: dict[str, Any],
    *,
    key_prefix: str,
    offering_id: str,
) -> tuple[str, str]:
    """The customer's open billing account (opened if missing) billing this line: (account id,
    billed line id). A customer has one open account on the billing platform; a second line
    joins it."""
    account_id = await billing.open_account(
        customer_id=line["customer_id"], key=f"billing-sync:{key_prefix}:account"
    )
    return await billing.bill_line(
        account_id=account_id,
        msisdn=line["msisdn"],
        tariff_code=tariff_code(offering_id),
        monthly_charge_cents=cents(await uow.catalogue.monthly_charge(offering_id=offering_id)),
        subscription_id=line["subscription_id"],
        key=f"billing-sync:{key_prefix}:subscription",
    )
