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

from sqlalchemy import text

from mvno.billing_sync.balances import DayUsage, apply_usage
from mvno.billing_sync.domain.usage import UsageRow
from mvno.common.db import UnitOfWork
from mvno.common.events.billing import UsageRecorded

_log = logging.getLogger(__name__)

Source = Literal["usage_file", "usage_api"]
QuarantineRow = tuple[int, str | None, str, str]
"""(line number, record id if known, reason, content)."""

_STAGING = (
    "CREATE TEMPORARY TABLE usage_staging (line_number integer, record_id text, msisdn text, "
    "usage_type text, quantity bigint, started_at timestamptz) ON COMMIT DROP"
)
_STAGING_COLUMNS = ("line_number", "record_id", "msisdn", "usage_type", "quantity", "started_at")

_QUARANTINE_UNKNOWN = (
    "INSERT INTO usage_quarantine (batch_id, line_number, record_id, reason, content) "
    "SELECT $1, s.line_number, s.record_id, 'unknown msisdn', s.msisdn FROM usage_staging s "
    "WHERE NOT EXISTS (SELECT 1 FROM subscriptions l WHERE l.msisdn = s.msisdn)"
)

# `lines`: the newest subscription holding each number, so a recycled number's usage goes to its
# new owner.
_RECORD = """
WITH lines AS (
    SELECT DISTINCT ON (msisdn) msisdn, subscription_id FROM subscriptions
    ORDER BY msisdn, activated_at DESC
),
inserted AS (
    INSERT INTO usage_records (record_id, subscription_id, usage_type, quantity, started_at,
                               batch_id)
    SELECT s.record_id, l.subscription_id, s.usage_type, s.quantity, s.started_at, $1
    FROM usage_staging s JOIN lines l ON l.msisdn = s.msisdn
    ON CONFLICT (record_id) DO NOTHING
    RETURNING subscription_id, usage_type, quantity, started_at
)
SELECT i.subscription_id, l.customer_id, (i.started_at AT TIME ZONE 'UTC')::date AS day,
       i.usage_type, sum(i.quantity)::bigint AS quantity, count(*) AS records,
       min(i.started_at) AS first, max(i.started_at) AS last
FROM inserted i JOIN subscriptions l ON l.subscription_id = i.subscription_id
GROUP BY i.subscription_id, l.customer_id, day, i.usage_type
"""

_DAILY = (
    "INSERT INTO usage_daily (subscription_id, usage_date, data_bytes, voice_seconds, "
    "sms_count, charge, updated_at) VALUES (:s, :d, :data, :voice, :sms, :charge, now()) "
    "ON CONFLICT (subscription_id, usage_date) DO UPDATE SET "
    "data_bytes = usage_daily.data_bytes + excluded.data_bytes, "
    "voice_seconds = usage_daily.voice_seconds + excluded.voice_seconds, "
    "sms_count = usage_daily.sms_count + excluded.sms_count, "
    "charge = usage_daily.charge + excluded.charge, updated_at = now()"
)


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

    def __init__(self, uow: UnitOfWork, *, batch_id: str, source: Source) -> None:
        self._uow = uow
        self.batch_id = batch_id
        self.source = source
        self._connection: Any = None
        self.staged = 0
        self.invalid = 0
        self.lines = 0

    async def open(self) -> None:
        connection = await self._uow.session.connection()
        raw = await connection.get_raw_connection()
        self._connection = raw.driver_connection  # asyncpg, in the unit of work's transaction
        # The batch's aggregation sorts or hashes every new record: in memory, not spilled to disk.
        await self._connection.execute("SET LOCAL work_mem = '64MB'")
        await self._connection.execute(_STAGING)

    async def stage(self, rows: Sequence[tuple[int, *tuple[Any, ...]]]) -> None:
        """Copy valid records: (line number, record id, msisdn, usage type, quantity, start)."""
        if rows:
            await self._connection.copy_records_to_table(
                "usage_staging", records=rows, columns=_STAGING_COLUMNS
            )
            self.staged += len(rows)

    async def quarantine(self, rows: Sequence[QuarantineRow]) -> None:
        if rows:
            await self._connection.copy_records_to_table(
                "usage_quarantine",
                records=[(self.batch_id, *row) for row in rows],
                columns=("batch_id", "line_number", "record_id", "reason", "content"),
            )
            self.invalid += len(rows)

    async def finish(self, **batch_columns: Any) -> BatchResult:
        connection = self._connection
        started = time.perf_counter()
        await connection.execute("ANALYZE usage_staging")
        unknown = int((await connection.execute(_QUARANTINE_UNKNOWN, self.batch_id)).split()[-1])
        quarantined_at = time.perf_counter()
        groups = await connection.fetch(_RECORD, self.batch_id)
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
        await self._uow.session.execute(
            text(
                "INSERT INTO usage_batches (id, source, bucket, object_key, etag, cursor_from, "
                "cursor_to, lines, accepted, duplicates, quarantined, finished_at) VALUES (:id, "
                ":source, :bucket, :object_key, :etag, :cursor_from, :cursor_to, :lines, "
                ":accepted, :duplicates, :quarantined, now())"
            ),
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
            await self._uow.session.execute(
                text(_DAILY),
                [
                    {
                        "s": s,
                        "d": d,
                        "data": q["data"],
                        "voice": q["voice"],
                        "sms": q["sms"],
                        "charge": charges.get((s, d), Decimal("0.00")),
                    }
                    for (s, d), q in sorted(days.items())  # one lock order: no deadlocks
                ],
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
