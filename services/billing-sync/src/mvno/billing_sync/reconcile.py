"""Reconciliation: the billing platform's lines against the platform's, drift reported and repaired.

Run on demand (``mvno-billing-sync reconcile``) and on a schedule by the worker. A line with an
account operation still pending is left to that operation (it is in flight, not drifted); every
other finding is repaired with its own Idempotency-Key and recorded, with the outcome, in
``reconciliation_runs``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from mvno.billing_sync import metrics
from mvno.billing_sync.clients import BillingPlatform, open_partners
from mvno.billing_sync.domain.accounts import Finding, cents, compare, tariff_code
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.sync import open_billing
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.db import create_engine
from mvno.common.events.billing import AccountCreated
from mvno.common.http import create_partner_session
from mvno.common.partners import PartnerError

_log = logging.getLogger(__name__)


async def reconcile(
    unit_of_work: Callable[[], BillingUnitOfWork], billing: BillingPlatform
) -> dict[str, Any]:
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    remote = await billing.billed_lines()
    async with unit_of_work() as uow:
        local = await uow.accounts.local_lines()
        in_flight = await uow.accounts.with_pending_operations()
    report: list[dict[str, Any]] = []
    for finding in compare(local, remote):
        entry: dict[str, Any] = asdict(finding)
        if finding.subscription_id in in_flight:
            entry["outcome"] = "left to its pending operation"
        else:
            try:
                await _repair(unit_of_work, billing, finding, run_id)
                entry["outcome"] = "repaired"
            except PartnerError as error:
                entry["outcome"] = f"not repaired: {error.reason}"
        report.append(entry)
        _log.warning("reconciliation: %s", entry)
    async with unit_of_work() as uow:
        await uow.accounts.record_reconciliation(run_id=run_id, started_at=started, findings=report)
        await uow.commit()
    metrics.reconciled(entry["drift"] for entry in report)
    return {"run_id": run_id, "lines": len(local), "billed": len(remote), "findings": report}


async def _repair(
    unit_of_work: Callable[[], BillingUnitOfWork],
    billing: BillingPlatform,
    finding: Finding,
    run_id: str,
) -> None:
    key = f"billing-sync:reconcile:{run_id}:{finding.subscription_id or finding.billing_subscription_id}"
    if finding.drift == "extra":
        await billing.end_line(
            billed_line_id=str(finding.billing_subscription_id), key=key + ":end"
        )
        return
    async with unit_of_work() as uow:
        assert finding.subscription_id is not None
        line = await uow.accounts.subscription(subscription_id=finding.subscription_id)
        assert line is not None
        if finding.drift == "wrong_tariff":
            await billing.change_tariff(
                billed_line_id=str(finding.billing_subscription_id),
                tariff_code=tariff_code(line["offering_id"]),
                monthly_charge_cents=cents(
                    await uow.catalogue.monthly_charge(offering_id=line["offering_id"])
                ),
                key=key + ":tariff",
            )
            return
        account_id, billed_id = await open_billing(
            billing,
            uow,
            line,
            key_prefix=f"reconcile:{run_id}:{finding.subscription_id}",
            offering_id=line["offering_id"],
        )
        await uow.accounts.record_billing(
            subscription_id=line["subscription_id"],
            billing_account_id=account_id,
            billing_subscription_id=billed_id,
        )
        uow.publish(
            AccountCreated(
                billing_account_id=account_id,
                subscription_id=line["subscription_id"],
                customer_id=line["customer_id"],
                order_id=None,
            )
        )
        await uow.commit()


async def reconcile_once(settings: BillingSyncSettings) -> dict[str, Any]:
    """One reconciliation with its own connections (the ``reconcile`` command)."""
    from mvno.billing_sync.worker import units_of_work

    engine = create_engine(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        http = await stack.enter_async_context(
            create_partner_session(settings, timeout=settings.partner_timeout_seconds)
        )
        return await reconcile(
            units_of_work(engine, settings), open_partners(settings, http).billing
        )
