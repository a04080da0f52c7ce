"""Billing-sync's reads and writes, by intent. Methods never commit: the unit of work does."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync.domain.accounts import STATUS_AFTER, LocalLine
from mvno.billing_sync.domain.allowances import AIRTIME_LOW, Bucket, PricePeriod
from mvno.common.events.catalog import OfferingPrice


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


class BillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _run(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return await self.session.execute(text(sql), params or {})

    # --- subscriptions and account operations --------------------------------------------------

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
        await self._run(
            "INSERT INTO subscriptions (subscription_id, customer_id, msisdn, offering_id, "
            "payment_type, status, sequence, activated_at, updated_at) VALUES (:s, :c, :m, :o, "
            ":p, 'active', :seq, :at, :at) ON CONFLICT DO NOTHING",
            {
                "s": subscription_id,
                "c": customer_id,
                "m": msisdn,
                "o": offering_id,
                "p": payment_type,
                "seq": sequence,
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
        await self._run(
            "INSERT INTO account_operations (subscription_id, sequence, operation, order_id, "
            "offering_id, status, next_attempt_at, created_at) VALUES (:s, :seq, :op, :order, "
            ":o, 'pending', now(), :at) ON CONFLICT DO NOTHING",
            {
                "s": subscription_id,
                "seq": sequence,
                "op": operation,
                "order": order_id,
                "o": offering_id,
                "at": at,
            },
        )

    async def apply_queued_changes(self, *, subscription_id: str) -> None:
        """Bring the copy's status and tariff to what the newest events recorded for it say,
        whatever order they arrived in."""
        current = (
            await self._run(
                "SELECT sequence FROM subscriptions WHERE subscription_id = :s FOR UPDATE",
                {"s": subscription_id},
            )
        ).scalar()
        if current is None:
            return  # its activation has not arrived yet; it applies these when it does
        ops = _rows(
            await self._run(
                "SELECT sequence, operation, offering_id FROM account_operations "
                "WHERE subscription_id = :s ORDER BY sequence",
                {"s": subscription_id},
            )
        )
        newest = ops[-1]
        offering = next((op["offering_id"] for op in reversed(ops) if op["offering_id"]), None)
        await self._run(
            "UPDATE subscriptions SET status = :status, sequence = :seq, "
            "offering_id = COALESCE(:o, offering_id), updated_at = now() "
            "WHERE subscription_id = :s",
            {
                "status": STATUS_AFTER[newest["operation"]],
                "seq": newest["sequence"],
                "o": offering,
                "s": subscription_id,
            },
        )

    async def take_due_operations(self, *, limit: int) -> list[dict[str, Any]]:
        """Due operations, each the earliest unfinished one of its subscription, locked."""
        return _rows(
            await self._run(
                "SELECT o.* FROM account_operations o WHERE o.status = 'pending' "
                "AND o.next_attempt_at <= now() AND NOT EXISTS (SELECT 1 FROM account_operations p "
                "WHERE p.subscription_id = o.subscription_id AND p.status = 'pending' "
                "AND p.sequence < o.sequence) ORDER BY o.next_attempt_at LIMIT :limit "
                "FOR UPDATE SKIP LOCKED",
                {"limit": limit},
            )
        )

    async def subscription(self, *, subscription_id: str) -> dict[str, Any] | None:
        rows = _rows(
            await self._run(
                "SELECT * FROM subscriptions WHERE subscription_id = :s", {"s": subscription_id}
            )
        )
        return rows[0] if rows else None

    async def create_failed(self, *, subscription_id: str) -> bool:
        return bool(
            (
                await self._run(
                    "SELECT 1 FROM account_operations WHERE subscription_id = :s "
                    "AND operation = 'create' AND status = 'failed'",
                    {"s": subscription_id},
                )
            ).first()
        )

    async def finish_operation(
        self, *, operation_id: int, status: str, error: str | None = None
    ) -> None:
        await self._run(
            "UPDATE account_operations SET status = :status, last_error = :error, "
            "attempts = attempts + 1, finished_at = now() WHERE id = :id",
            {"status": status, "error": error, "id": operation_id},
        )

    async def retry_operation(self, *, operation_id: int, delay: float, error: str) -> None:
        await self._run(
            "UPDATE account_operations SET attempts = attempts + 1, last_error = :error, "
            "next_attempt_at = now() + make_interval(secs => :delay) WHERE id = :id",
            {"error": error, "delay": delay, "id": operation_id},
        )

    async def postpone_operation(self, *, operation_id: int, delay: float) -> None:
        await self._run(
            "UPDATE account_operations SET next_attempt_at = now() + make_interval(secs => :d) "
            "WHERE id = :id",
            {"d": delay, "id": operation_id},
        )

    async def record_billing(
        self,
        *,
        subscription_id: str,
        billing_account_id: str | None,
        billing_subscription_id: str | None,
    ) -> None:
        await self._run(
            "UPDATE subscriptions SET billing_account_id = :a, billing_subscription_id = :b, "
            "updated_at = now() WHERE subscription_id = :s",
            {"a": billing_account_id, "b": billing_subscription_id, "s": subscription_id},
        )

    async def local_lines(self) -> list[LocalLine]:
        return [
            LocalLine(
                r["subscription_id"], r["customer_id"], r["msisdn"], r["offering_id"], r["status"]
            )
            for r in _rows(
                await self._run(
                    "SELECT subscription_id, customer_id, msisdn, offering_id, status "
                    "FROM subscriptions"
                )
            )
        ]

    async def monthly_charge(self, *, offering_id: str) -> Decimal:
        value = (
            await self._run(
                "SELECT tax_included_amount FROM offering_price_copies WHERE offering_id = :o "
                "AND price_type = 'recurring' AND valid_from <= now() "
                "AND (valid_to IS NULL OR valid_to > now()) ORDER BY valid_from DESC LIMIT 1",
                {"o": offering_id},
            )
        ).scalar()
        return Decimal(value) if value is not None else Decimal(0)

    async def record_reconciliation(
        self, *, run_id: str, started_at: datetime, findings: list[dict[str, Any]]
    ) -> None:
        import json

        await self._run(
            "INSERT INTO reconciliation_runs (id, started_at, finished_at, findings) "
            "VALUES (:id, :at, now(), CAST(:f AS jsonb))",
            {"id": run_id, "at": started_at, "f": json.dumps(findings)},
        )

    # --- catalogue copy ----------------------------------------------------------------------

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
        await self._run(
            "INSERT INTO offering_copies (offering_id, version, name, status, payment_type, "
            "product_kind, updated_at) VALUES (:o, :v, :n, 'launched', :p, :k, :at) "
            "ON CONFLICT (offering_id) DO UPDATE SET version = excluded.version, "
            "name = excluded.name, status = 'launched', payment_type = excluded.payment_type, "
            "product_kind = excluded.product_kind, updated_at = excluded.updated_at "
            "WHERE offering_copies.status <> 'retired'",
            {
                "o": offering_id,
                "v": version,
                "n": name,
                "p": payment_type,
                "k": product_kind,
                "at": at,
            },
        )

    async def retire_offering(self, *, offering_id: str, version: str, at: datetime) -> None:
        await self._run(
            "INSERT INTO offering_copies (offering_id, version, name, status, payment_type, "
            "updated_at) VALUES (:o, :v, '', 'retired', 'prepaid', :at) "
            "ON CONFLICT (offering_id) DO UPDATE SET status = 'retired', updated_at = :at",
            {"o": offering_id, "v": version, "at": at},
        )

    async def put_price(self, *, offering_id: str, price: OfferingPrice) -> None:
        await self._run(
            "INSERT INTO offering_price_copies (price_id, offering_id, price_type, "
            "recurring_period, unit_of_measure, tax_included_amount, valid_from, valid_to) "
            "VALUES (:id, :o, :t, :r, :u, :a, :f, :to) ON CONFLICT (price_id) DO UPDATE SET "
            "tax_included_amount = excluded.tax_included_amount, valid_to = excluded.valid_to",
            {
                "id": price.price_id,
                "o": offering_id,
                "t": price.price_type,
                "r": price.recurring_period,
                "u": price.unit_of_measure,
                "a": price.tax_included_amount.amount,
                "f": price.valid_from,
                "to": price.valid_to,
            },
        )

    async def close_price(self, *, price_id: str, at: datetime) -> None:
        await self._run(
            "UPDATE offering_price_copies SET valid_to = :at WHERE price_id = :id "
            "AND (valid_to IS NULL OR valid_to > :at)",
            {"id": price_id, "at": at},
        )

    async def usage_prices(
        self, *, subscription_ids: list[str]
    ) -> dict[tuple[str, str], list[PricePeriod]]:
        """(subscription, unit of measure) -> every usage price of its tariff, with validity."""
        rows = _rows(
            await self._run(
                "SELECT s.subscription_id, p.unit_of_measure, p.tax_included_amount, "
                "p.valid_from, p.valid_to FROM subscriptions s "
                "JOIN offering_price_copies p ON p.offering_id = s.offering_id "
                "WHERE s.subscription_id = ANY(:ids) AND p.price_type = 'usage'",
                {"ids": subscription_ids},
            )
        )
        found: dict[tuple[str, str], list[PricePeriod]] = {}
        for r in rows:
            found.setdefault((r["subscription_id"], r["unit_of_measure"]), []).append(
                PricePeriod(r["valid_from"], r["valid_to"], Decimal(r["tax_included_amount"]))
            )
        return found

    # --- buckets -------------------------------------------------------------------------------

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
        await self._run(
            "INSERT INTO buckets (id, subscription_id, customer_id, usage_type, units, name, "
            "offering_id, order_id, order_item_id, initial_amount, remaining, valid_from, "
            "valid_to, status, created_at) VALUES (:id, :s, :c, :t, :u, :n, :o, :order, :item, "
            ":a, :a, :f, :to, 'active', :at) ON CONFLICT DO NOTHING",
            {
                "id": str(uuid.uuid4()),
                "s": subscription_id,
                "c": customer_id,
                "t": usage_type,
                "u": units,
                "n": name,
                "o": offering_id,
                "order": order_id,
                "item": order_item_id,
                "a": amount,
                "f": valid_from,
                "to": valid_to,
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
        credited = (
            await self._run(
                "INSERT INTO airtime_credits (order_id, order_item_id, subscription_id, amount, "
                "credited_at) VALUES (:o, :i, :s, :a, :at) ON CONFLICT DO NOTHING "
                "RETURNING order_id",
                {"o": order_id, "i": order_item_id, "s": subscription_id, "a": amount, "at": at},
            )
        ).first()
        if credited is None:
            return False
        # The balance goes back above the threshold on a top-up, so the next crossing is
        # announced again (low_notified re-arms when the remaining amount is above it).
        await self._run(
            "INSERT INTO buckets (id, subscription_id, customer_id, usage_type, units, name, "
            "initial_amount, remaining, valid_from, status, created_at) VALUES (:id, :s, :c, "
            "'airtime', 'ZAR', 'Airtime', :a, :a, :at, 'active', :at) ON CONFLICT (id) DO UPDATE "
            "SET initial_amount = buckets.initial_amount + :a, "
            "remaining = buckets.remaining + :a, status = 'active', "
            "low_notified = buckets.low_notified AND buckets.remaining + :a < :low",
            {
                "id": f"airtime-{subscription_id}",
                "s": subscription_id,
                "c": customer_id,
                "a": amount,
                "at": at,
                "low": AIRTIME_LOW,
            },
        )
        return True

    async def buckets_of(self, *, subscription_ids: list[str]) -> dict[str, list[Bucket]]:
        rows = _rows(
            await self._run(
                "SELECT * FROM buckets WHERE subscription_id = ANY(:ids) AND status = 'active' "
                "ORDER BY subscription_id, id FOR UPDATE",
                {"ids": subscription_ids},
            )
        )
        found: dict[str, list[Bucket]] = {}
        for r in rows:
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
            text(
                "UPDATE buckets SET remaining = :remaining, status = :status, "
                "low_notified = :low WHERE id = :id"
            ),
            [
                {"remaining": b.remaining, "status": b.status, "low": b.low_notified, "id": b.id}
                for b in buckets
            ],
        )

    async def expire_buckets(self, *, at: datetime, limit: int) -> list[dict[str, Any]]:
        return _rows(
            await self._run(
                "UPDATE buckets SET status = 'expired' WHERE id IN (SELECT id FROM buckets "
                "WHERE status IN ('active', 'depleted') AND valid_to <= :at LIMIT :limit "
                "FOR UPDATE SKIP LOCKED) RETURNING *",
                {"at": at, "limit": limit},
            )
        )

    # --- reads ---------------------------------------------------------------------------------

    async def bucket_page(
        self, *, subscription_id: str, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        total = (
            await self._run(
                "SELECT count(*) FROM buckets WHERE subscription_id = :s", {"s": subscription_id}
            )
        ).scalar_one()
        rows = _rows(
            await self._run(
                "SELECT * FROM buckets WHERE subscription_id = :s ORDER BY usage_type = 'airtime' "
                "DESC, valid_to NULLS FIRST, created_at, id OFFSET :o LIMIT :l",
                {"s": subscription_id, "o": offset, "l": limit},
            )
        )
        return total, rows

    async def usage_page(
        self,
        *,
        subscription_id: str,
        since: date | None,
        until: date | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        params: dict[str, Any] = {"s": subscription_id, "f": since, "t": until}
        total = (
            await self._run(
                "SELECT count(*) FROM usage_daily WHERE subscription_id = :s "
                "AND (CAST(:f AS date) IS NULL OR usage_date >= :f) "
                "AND (CAST(:t AS date) IS NULL OR usage_date <= :t)",
                params,
            )
        ).scalar_one()
        rows = _rows(
            await self._run(
                "SELECT * FROM usage_daily WHERE subscription_id = :s "
                "AND (CAST(:f AS date) IS NULL OR usage_date >= :f) "
                "AND (CAST(:t AS date) IS NULL OR usage_date <= :t) "
                "ORDER BY usage_date DESC OFFSET :o LIMIT :l",
                {**params, "o": offset, "l": limit},
            )
        )
        return total, rows
