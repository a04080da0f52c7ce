"""Subscriptions (the local copy of the lines), their queued billing-platform operations and
the reconciliation runs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync import statements as sql
from mvno.billing_sync.domain.accounts import STATUS_AFTER, LocalLine
from mvno.billing_sync.repository import rows


class AccountsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_subscription(
        self,
        *,
        subscription_id: str,
        customer_id: str,
        msisdn: str,
        offering_id: str,
        payment_type: str,
        sequence: int,
        at: datetime,
    ) -> None:
        await self.session.execute(
            sql.ADD_SUBSCRIPTION,
            {
                "subscription_id": subscription_id,
                "customer_id": customer_id,
                "msisdn": msisdn,
                "offering_id": offering_id,
                "payment_type": payment_type,
                "sequence": sequence,
                "at": at,
            },
        )

    async def queue_operation(
        self,
        *,
        subscription_id: str,
        sequence: int,
        operation: str,
        order_id: str | None,
        offering_id: str | None,
        at: datetime,
    ) -> None:
        await self.session.execute(
            sql.QUEUE_OPERATION,
            {
                "subscription_id": subscription_id,
                "sequence": sequence,
                "operation": operation,
                "order_id": order_id,
                "offering_id": offering_id,
                "at": at,
            },
        )

    async def apply_queued_changes(self, *, subscription_id: str) -> None:
        """Bring the copy's status and tariff to what the newest events recorded for it say,
        whatever order they arrived in."""
        current = (
            await self.session.execute(
                sql.LOCK_SUBSCRIPTION_SEQUENCE, {"subscription_id": subscription_id}
            )
        ).scalar()
        if current is None:
            return  # its activation has not arrived yet; it applies these when it does
        operations = rows(
            await self.session.execute(
                sql.OPERATIONS_OF_SUBSCRIPTION, {"subscription_id": subscription_id}
            )
        )
        newest = operations[-1]
        offering = next(
            (op["offering_id"] for op in reversed(operations) if op["offering_id"]), None
        )
        await self.session.execute(
            sql.SET_SUBSCRIPTION_STATE,
            {
                "status": STATUS_AFTER[newest["operation"]],
                "sequence": newest["sequence"],
                "offering_id": offering,
                "subscription_id": subscription_id,
            },
        )

    async def take_due_operations(self, *, limit: int) -> list[dict[str, Any]]:
        """Due operations, each the earliest unfinished one of its subscription, locked."""
        return rows(await self.session.execute(sql.TAKE_DUE_OPERATIONS, {"limit": limit}))

    async def subscription(self, *, subscription_id: str) -> dict[str, Any] | None:
        found = rows(
            await self.session.execute(sql.SUBSCRIPTION, {"subscription_id": subscription_id})
        )
        return found[0] if found else None

    async def create_failed(self, *, subscription_id: str) -> bool:
        return bool(
            (
                await self.session.execute(sql.CREATE_FAILED, {"subscription_id": subscription_id})
            ).first()
        )

    async def finish_operation(
        self, *, operation_id: int, status: str, error: str | None = None
    ) -> None:
        await self.session.execute(
            sql.FINISH_OPERATION,
            {"status": status, "error": error, "operation_id": operation_id},
        )

    async def retry_operation(self, *, operation_id: int, delay: float, error: str) -> None:
        await self.session.execute(
            sql.RETRY_OPERATION, {"error": error, "delay": delay, "operation_id": operation_id}
        )

    async def postpone_operation(self, *, operation_id: int, delay: float) -> None:
        await self.session.execute(
            sql.POSTPONE_OPERATION, {"delay": delay, "operation_id": operation_id}
        )

    async def record_billing(
        self,
        *,
        subscription_id: str,
        billing_account_id: str | None,
        billing_subscription_id: str | None,
    ) -> None:
        await self.session.execute(
            sql.RECORD_BILLING,
            {
                "billing_account_id": billing_account_id,
                "billing_subscription_id": billing_subscription_id,
                "subscription_id": subscription_id,
            },
        )

    async def local_lines(self) -> list[LocalLine]:
        return [
            LocalLine(
                r["subscription_id"], r["customer_id"], r["msisdn"], r["offering_id"], r["status"]
            )
            for r in rows(await self.session.execute(sql.LOCAL_LINES))
        ]

    async def with_pending_operations(self) -> set[str]:
        """The subscriptions with an operation still pending (in flight, not drifted)."""
        return set(
            (await self.session.execute(sql.SUBSCRIPTIONS_WITH_PENDING_OPERATIONS)).scalars()
        )

    async def record_reconciliation(
        self, *, run_id: str, started_at: datetime, findings: list[dict[str, Any]]
    ) -> None:
        await self.session.execute(
            sql.RECORD_RECONCILIATION,
            {"run_id": run_id, "started_at": started_at, "findings": json.dumps(findings)},
        )
