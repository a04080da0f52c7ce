"""Usage: the staging of an ingestion batch, the records and daily totals it writes, the batches
themselves, and the usage API's cursor.

A batch's records are staged with ``COPY`` and recorded set-based on the asyncpg connection; the
rest goes through the session. Both are the unit of work's, in its one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.billing_sync.tables import rows, usage_daily
from mvno.billing_sync.usage import statements as sql


class UsageRepository:
    def __init__(self, session: AsyncSession, connection: asyncpg.Connection) -> None:
        self.session = session
        self.connection = connection

    # --- one ingestion batch (asyncpg) ---------------------------------------------------------

    async def open_staging(self) -> None:
        """The batch's staging table, dropped at commit."""
        await sql.AGGREGATE_IN_MEMORY.execute(self.connection)
        await sql.CREATE_STAGING.execute(self.connection)

    async def stage(self, records: Sequence[tuple[Any, ...]]) -> None:
        """Copy valid records: (line number, record id, msisdn, usage type, quantity, start)."""
        await self.connection.copy_records_to_table(
            sql.STAGING_TABLE, records=records, columns=sql.STAGING_COLUMNS
        )

    async def quarantine(self, records: Sequence[tuple[Any, ...]]) -> None:
        """Copy refused lines: (batch id, line number, record id, reason, content)."""
        await self.connection.copy_records_to_table(
            sql.QUARANTINE_TABLE, records=records, columns=sql.QUARANTINE_COLUMNS
        )

    async def quarantine_unknown_numbers(self, *, batch_id: str) -> int:
        """Quarantine the staged records no subscription's number matches; how many."""
        await sql.ANALYZE_STAGING.execute(self.connection)
        status = await sql.QUARANTINE_UNKNOWN_NUMBERS.execute(self.connection, batch_id=batch_id)
        return int(status.split()[-1])

    async def record_staged(self, *, batch_id: str) -> list[asyncpg.Record]:
        """Record the staged records new to the platform; their totals per line, day and kind."""
        return await sql.RECORD_STAGED_USAGE.fetch(self.connection, batch_id=batch_id)

    # --- batches, days and files --------------------------------------------------------------

    async def record_batch(self, values: dict[str, Any]) -> None:
        await self.session.execute(sql.RECORD_BATCH, values)

    async def add_daily_usage(self, days: list[dict[str, Any]]) -> None:
        """Add to each (subscription, day)'s totals; ``days`` in one order, so no deadlocks."""
        await self.session.execute(sql.ADD_DAILY_USAGE, days)

    async def lock_file_version(self, *, lock_key: str) -> None:
        """Until commit, one ingestion of this file version, whichever worker got it."""
        await self.session.execute(sql.LOCK_FILE_VERSION, {"lock_key": lock_key})

    async def file_version_ingested(self, *, bucket: str, object_key: str, etag: str) -> bool:
        seen = await self.session.execute(
            sql.FILE_VERSION_INGESTED, {"bucket": bucket, "object_key": object_key, "etag": etag}
        )
        return seen.first() is not None

    # --- the usage API's cursor ---------------------------------------------------------------

    async def lock_cursor(self, *, source: str) -> str:
        """The source's cursor (created at its start if new), locked until commit."""
        await self.session.execute(sql.START_CURSOR, {"source": source})
        cursor: str = (
            await self.session.execute(sql.CURSOR_FOR_UPDATE, {"source": source})
        ).scalar_one()
        return cursor

    async def move_cursor(self, *, source: str, cursor: str) -> None:
        await self.session.execute(sql.MOVE_CURSOR, {"cursor": cursor, "source": source})

    # --- reads --------------------------------------------------------------------------------

    async def usage_page(
        self,
        *,
        subscription_id: str,
        since: date | None,
        until: date | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        days = usage_daily.c
        where = [days.subscription_id == subscription_id]
        if since is not None:
            where.append(days.usage_date >= since)
        if until is not None:
            where.append(days.usage_date <= until)
        total = (
            await self.session.execute(select(func.count()).select_from(usage_daily).where(*where))
        ).scalar_one()
        page = rows(
            await self.session.execute(
                select(usage_daily)
                .where(*where)
                .order_by(days.usage_date.desc())
                .offset(offset)
                .limit(limit)
            )
        )
        return total, page
