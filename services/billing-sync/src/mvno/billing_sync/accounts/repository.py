"""Subscriptions (the local copy of the lines), their queued billing-platform operations and
the reconciliation runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync.domain.accounts import STATUS_AFTER, LocalLine
from mvno.billing_sync.tables import account_operations, reconciliation_runs, rows, subscriptions
from mvno.common.tracing import trace_header


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
            insert(subscriptions)
            .values(
                subscription_id=subscription_id,
                customer_id=customer_id,
                msisdn=msisdn,
                offering_id=offering_id,
                payment_type=payment_type,
                status="active",
                sequence=sequence,
                activated_at=at,
                updated_at=at,
            )
            .on_conflict_do_nothing()
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
            insert(account_operations)
            .values(
                subscription_id=subscription_id,
                sequence=sequence,
                operation=operation,
                order_id=order_id,
                offering_id=offering_id,
                status="pending",
                next_attempt_at=func.now(),
                created_at=at,
                # The worker that makes the call continues the trace of the event that owed it.
                trace_context=trace_header(),
            )
            .on_conflict_do_nothing()
        )

    async def apply_queued_changes(self, *, subscription_id: str) -> None:
        """Bring the copy's status and tariff to what the newest events recorded for it say,
        whatever order they arrived in."""
        current = (
            await self.session.execute(
                select(subscriptions.c.sequence)
                .where(subscriptions.c.subscription_id == subscription_id)
                .with_for_update()
            )
        ).scalar()
        if current is None:
            return  # its activation has not arrived yet; it applies these when it does
        operations = rows(
            await self.session.execute(
                select(
                    account_operations.c.sequence,
                    account_operations.c.operation,
                    account_operations.c.offering_id,
                )
                .where(account_operations.c.subscription_id == subscription_id)
                .order_by(account_operations.c.sequence)
            )
        )
        newest = operations[-1]
        offering = next(
            (op["offering_id"] for op in reversed(operations) if op["offering_id"]), None
        )
        changes: dict[str, Any] = {
            "status": STATUS_AFTER[newest["operation"]],
            "sequence": newest["sequence"],
            "updated_at": func.now(),
        }
        if offering is not None:  # no event named a tariff: the copy keeps its own
            changes["offering_id"] = offering
        await self.session.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == subscription_id)
            .values(**changes)
        )

    async def take_due_operations(self, *, limit: int) -> list[dict[str, Any]]:
        """Due operations, each the earliest unfinished one of its subscription, locked."""
        due, earlier = account_operations.alias("o"), account_operations.alias("p")
        return rows(
            await self.session.execute(
                select(due)
                .where(
                    due.c.status == "pending",
                    due.c.next_attempt_at <= func.now(),
                    ~exists().where(
                        earlier.c.subscription_id == due.c.subscription_id,
                        earlier.c.status == "pending",
                        earlier.c.sequence < due.c.sequence,
                    ),
                )
                .order_by(due.c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )

    async def subscription(self, *, subscription_id: str) -> dict[str, Any] | None:
        found = rows(
            await self.session.execute(
                select(subscriptions).where(subscriptions.c.subscription_id == subscription_id)
            )
        )
        return found[0] if found else None

    async def create_failed(self, *, subscription_id: str) -> bool:
        return bool(
            (
                await self.session.execute(
                    select(
                        exists().where(
                            account_operations.c.subscription_id == subscription_id,
                            account_operations.c.operation == "create",
                            account_operations.c.status == "failed",
                        )
                    )
                )
            ).scalar()
        )

    async def finish_operation(
        self, *, operation_id: int, status: str, error: str | None = None
    ) -> None:
        await self.session.execute(
            update(account_operations)
            .where(account_operations.c.id == operation_id)
            .values(
                status=status,
                last_error=error,
                attempts=account_operations.c.attempts + 1,
                finished_at=func.now(),
            )
        )

    async def retry_operation(self, *, operation_id: int, delay: float, error: str) -> None:
        await self.session.execute(
            update(account_operations)
            .where(account_operations.c.id == operation_id)
            .values(
                attempts=account_operations.c.attempts + 1,
                last_error=error,
                next_attempt_at=func.now() + timedelta(seconds=delay),
            )
        )

    async def postpone_operation(self, *, operation_id: int, delay: float) -> None:
        await self.session.execute(
            update(account_operations)
            .where(account_operations.c.id == operation_id)
            .values(next_attempt_at=func.now() + timedelta(seconds=delay))
        )

    async def record_billing(
        self,
        *,
        subscription_id: str,
        billing_account_id: str | None,
        billing_subscription_id: str | None,
    ) -> None:
        await self.session.execute(
            update(subscriptions)
            .where(subscriptions.c.subscription_id == subscription_id)
            .values(
                billing_account_id=billing_account_id,
                billing_subscription_id=billing_subscription_id,
                updated_at=func.now(),
            )
        )

    async def local_lines(self) -> list[LocalLine]:
        lines = await self.session.execute(
            select(
                subscriptions.c.subscription_id,
                subscriptions.c.customer_id,
                subscriptions.c.msisdn,
                subscriptions.c.offering_id,
                subscriptions.c.status,
            )
        )
        return [LocalLine(*line) for line in lines]

    async def with_pending_operations(self) -> set[str]:
        """The subscriptions with an operation still pending (in flight, not drifted)."""
        return set(
            (
                await self.session.execute(
                    select(account_operations.c.subscription_id)
                    .where(account_operations.c.status == "pending")
                    .distinct()
                )
            ).scalars()
        )

    async def record_reconciliation(
        self, *, run_id: str, started_at: datetime, findings: list[dict[str, Any]]
    ) -> None:
        await self.session.execute(
            insert(reconciliation_runs).values(
                id=run_id, started_at=started_at, finished_at=func.now(), findings=findings
            )
        )
