"""One ingestion batch (a usage file or a page of the usage API), set-based in one transaction.

Valid records are copied (asyncpg ``COPY``) into a temporary staging table a slice at a time, so
memory stays bounded whatever the size of the file; then a few statements do the rest in the
database: records for unknown numbers go to quarantine, the others into ``usage_records`` with
``ON CONFLICT DO NOTHING`` on the record id (a record seen before, in this file or another, counts
once), aggregated per subscription, day and kind for the balances, the daily usage and one
``billing.usage.recorded`` event per subscription. Either all of it commits or none.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from mvno.billing_sync.balances import DayUsage, apply_usage
from mvno.billing_sync.domain.usage import UsageRow
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.events.billing import UsageRecorded

_log = logging.getLogger(__name__)

Source = Literal["usage_file", "usage_api"]
QuarantineRow = tuple[int, str | None, str, str]
"""(line number, record id if known, reason, content)."""


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    lines: int
    accepted: int
    duplicates: int
    quarantined: int
    subscriptions: int


class Batch:
    """Stage records and quarantined lines, then :meth:`finish` in the caller's transaction."""

    def __init__(self, uow: BillingUnitOfWork, *, batch_id: str, source: Source) -> None:
        self._uow = uow
        self.batch_id = batch_id
        self.source = source
        self.staged = 0
        self.invalid = 0
        self.lines = 0

    async def open(self) -> None:
        await self._uow.usage.open_staging()

    async def stage(self, rows: Sequence[tuple[int, *tuple[Any, ...]]]) -> None:
        """Copy valid records: (line number, record id, msisdn, usage type, quantity, start)."""
        if rows:
            await self._uow.usage.stage(rows)
            self.staged += len(rows)

    async def quarantine(self, rows: Sequence[QuarantineRow]) -> None:
        if rows:
            await self._uow.usage.quarantine([(self.batch_id, *row) for row in rows])
            self.invalid += len(rows)

    async def finish(self, **batch_columns: Any) -> BatchResult:
        usage_repository = self._uow.usage
        started = time.perf_counter()
        unknown = await usage_repository.quarantine_unknown_numbers(batch_id=self.batch_id)
        quarantined_at = time.perf_counter()
        groups = await usage_repository.record_staged(batch_id=self.batch_id)
        recorded_at = time.perf_counter()
        usage = [
            DayUsage(
                g["subscription_id"],
                g["customer_id"],
                g["day"],
                g["usage_type"],
                g["quantity"],
                g["records"],
                g["first"],
                g["last"],
            )
            for g in groups
        ]
        accepted = sum(u.records for u in usage)
        charges = await apply_usage(self._uow, usage)
        await self._write_daily(usage, charges)
        self._announce(usage)
        _log.info(
            "batch %s: %d staged; unknown numbers %.2fs, records %.2fs, balances and daily %.2fs",
            self.batch_id,
            self.staged,
            quarantined_at - started,
            recorded_at - quarantined_at,
            time.perf_counter() - recorded_at,
        )
        quarantined = self.invalid + unknown
        result = BatchResult(
            batch_id=self.batch_id,
            lines=self.lines,
            accepted=accepted,
            duplicates=self.staged - unknown - accepted,
            quarantined=quarantined,
            subscriptions=len({u.subscription_id for u in usage}),
        )
        await usage_repository.record_batch(
            {
                "id": self.batch_id,
                "source": self.source,
                "bucket": None,
                "object_key": None,
                "etag": None,
                "cursor_from": None,
                "cursor_to": None,
                **batch_columns,
                "lines": result.lines,
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "quarantined": result.quarantined,
            },
        )
        return result

    async def _write_daily(
        self, usage: list[DayUsage], charges: dict[tuple[str, date], Decimal]
    ) -> None:
        days: dict[tuple[str, date], dict[str, int]] = defaultdict(
            lambda: {"data": 0, "voice": 0, "sms": 0}
        )
        for u in usage:
            days[(u.subscription_id, u.day)][u.usage_type] += u.quantity
        if days:
            await self._uow.usage.add_daily_usage(
                [
                    {
                        "subscription_id": subscription_id,
                        "usage_date": day,
                        "data_bytes": q["data"],
                        "voice_seconds": q["voice"],
                        "sms_count": q["sms"],
                        "charge": charges.get((subscription_id, day), Decimal("0.00")),
                    }
                    for (subscription_id, day), q in sorted(days.items())  # one lock order
                ]
            )

    def _announce(self, usage: list[DayUsage]) -> None:
        per_line: dict[str, list[DayUsage]] = defaultdict(list)
        for u in usage:
            per_line[u.subscription_id].append(u)
        for subscription_id, items in per_line.items():
            totals = {"data": 0, "voice": 0, "sms": 0}
            for u in items:
                totals[u.usage_type] += u.quantity
            self._uow.publish(
                UsageRecorded(
                    subscription_id=subscription_id,
                    customer_id=items[0].customer_id,
                    batch_id=self.batch_id,
                    source=self.source,
                    usage_from=min(u.first for u in items),
                    usage_to=max(u.last for u in items),
                    record_count=sum(u.records for u in items),
                    data_bytes=totals["data"],
                    voice_seconds=totals["voice"],
                    sms_count=totals["sms"],
                )
            )


def staged_row(line_number: int, row: UsageRow) -> tuple[int, str, str, str, int, datetime]:
    return (line_number, *row)
