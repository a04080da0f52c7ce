"""The network operator's usage API, polled with a cursor as a second usage source.

Each page is one ingestion batch committed together with the cursor that follows it, so a crash
between pages neither loses nor repeats records (and a record also delivered in a usage file is
still counted once: records are keyed by their id whatever their source).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mvno.billing_sync import metrics
from mvno.billing_sync.clients import NetworkOperator
from mvno.billing_sync.domain.usage import InvalidRecord, validate
from mvno.billing_sync.ingest import Batch, BatchResult, QuarantineRow
from mvno.billing_sync.unit_of_work import BillingUnitOfWork

SOURCE = "network-usage-api"
_log = logging.getLogger(__name__)


def _fields(record: dict[str, Any]) -> list[str]:
    return [str(record.get(name, "")) for name in ("id", "msisdn", "kind", "quantity", "startedAt")]


async def poll_once(
    unit_of_work: Callable[[], BillingUnitOfWork], network: NetworkOperator, *, page_size: int
) -> list[BatchResult]:
    """Read every page after the stored cursor; one committed batch per non-empty page."""
    results: list[BatchResult] = []
    while True:
        async with unit_of_work() as uow:
            cursor = await uow.usage.lock_cursor(source=SOURCE)
            page = await network.usage_records(cursor=cursor, limit=page_size)
            records, next_cursor = page.records, page.next_cursor
            if next_cursor is None:
                return results
            batch = Batch(uow, batch_id=f"usage-api:{cursor}-{next_cursor}", source="usage_api")
            await batch.open()
            good: list[tuple[Any, ...]] = []
            bad: list[QuarantineRow] = []
            for record in records:
                position = int(record.get("sequence") or 0)
                fields = _fields(record)
                try:
                    good.append((position, *validate(fields)))
                except InvalidRecord as error:
                    bad.append((position, None, str(error), ",".join(fields)[:300]))
            await batch.stage(good)
            await batch.quarantine(bad)
            batch.lines = len(records)
            result = await batch.finish(cursor_from=cursor, cursor_to=next_cursor)
            await uow.usage.move_cursor(source=SOURCE, cursor=next_cursor)
            await uow.commit()
        results.append(result)
        metrics.batch_committed(result, source="usage_api")
        _log.info("usage API: %d records after cursor %s", len(records), cursor)
        if len(records) < page_size:
            return results
