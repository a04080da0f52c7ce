"""Usage files dropped in object storage, announced on a queue, streamed and ingested."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mvno.billing_sync.usage_files import UsageFileWorker, ensure_usage_bucket, ingest_file
from mvno.common import metric_catalog as catalog
from mvno.common.aws import aws_client
from mvno.devstack.testing import metric_points

from .conftest import BillingWorld

HEADER = "record_id,msisdn,usage_type,quantity,started_at"
NOW = datetime.now(UTC).replace(microsecond=0)
T = (NOW - timedelta(hours=2)).isoformat()


@pytest.fixture
async def storage(world: BillingWorld) -> Any:
    queue_url = await ensure_usage_bucket(world.settings)
    async with aws_client(world.settings, "s3") as s3, aws_client(world.settings, "sqs") as sqs:
        worker = UsageFileWorker(
            unit_of_work=world.sync._unit_of_work,
            s3=s3,
            sqs=sqs,
            queue_url=queue_url,
            settings=world.settings,
        )
        yield s3, worker


async def drop(world: BillingWorld, s3: Any, key: str, lines: list[str]) -> None:
    body = "\n".join([HEADER, *lines]) + "\n"
    await s3.put_object(Bucket=world.settings.usage_bucket, Key=key, Body=body.encode())


async def notified(worker: UsageFileWorker) -> list[Any]:
    """Ingest what the next notification announces (skipping S3's test event)."""
    for _ in range(5):
        results = await worker.receive_once(wait_seconds=2)
        if results:
            return results
    raise AssertionError("no object-created notification arrived")


async def rows(world: BillingWorld, sql: str, *args: Any) -> list[dict[str, Any]]:
    connection = await world.database()
    try:
        return [dict(r) for r in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


def counted(reader: Any, spec: catalog.MetricSpec) -> float:
    return sum(p.value for p in metric_points(reader, spec.name, source="usage_file"))


async def test_good_records_are_recorded_bad_ones_quarantined_with_line_and_reason(
    world: BillingWorld, storage, metric_reader
):
    s3, worker = storage
    ingested = counted(metric_reader, catalog.USAGE_INGESTED)
    quarantined_before = counted(metric_reader, catalog.USAGE_QUARANTINED)
    line = await world.activate()
    m = line.msisdn
    await drop(world, s3, "2026/11/usage-1.csv", [
        f"r1,{m},data,1048576,{T}",                  # line 2
        f"r2,{m},voice,120,{T}",                     # line 3
        f"r3,{m},sms,2,{T}",                         # line 4
        f"r4,{m},data,lots,{T}",                     # line 5: bad quantity
        f"r5,0821234567,data,10,{T}",                # line 6: not E.164
        f"r1,{m},data,1048576,{T}",                  # line 7: repeats r1
        f"r6,+27820000001,sms,1,{T}",                # line 8: nobody has this number
        f"r7,{m},fax,1,{T}",                         # line 9: unknown usage type
        f"r8,{m},data,1,not-a-time",                 # line 10: bad timestamp
        f"r9,{m},data,1",                            # line 11: a field missing
    ])  # fmt: skip
    [result] = await notified(worker)

    assert (result.accepted, result.duplicates, result.quarantined) == (3, 1, 6)
    assert counted(metric_reader, catalog.USAGE_INGESTED) - ingested == 3
    assert counted(metric_reader, catalog.USAGE_QUARANTINED) - quarantined_before == 6
    quarantined = await rows(
        world, "SELECT line_number, reason FROM usage_quarantine ORDER BY line_number"
    )
    assert [(q["line_number"], q["reason"]) for q in quarantined] == [
        (5, "quantity must be a whole number >= 0"),
        (6, "msisdn is not an E.164 number"),
        (8, "unknown msisdn"),
        (9, "usage_type must be data, voice or sms"),
        (10, "started_at is not an ISO 8601 timestamp"),
        (11, "expected 5 fields, found 4"),
    ]
    [daily] = await rows(world, "SELECT * FROM usage_daily")
    assert (daily["data_bytes"], daily["voice_seconds"], daily["sms_count"]) == (1048576, 120, 2)
    [recorded] = await world.published("billing.usage.recorded.v1")
    assert recorded["data"]["record_count"] == 3
    assert recorded["data"]["source"] == "usage_file"
    assert recorded["data"]["batch_id"] == result.batch_id


async def test_a_file_processed_twice_and_records_repeated_across_files_count_once(
    world: BillingWorld, storage
):
    s3, worker = storage
    m = (await world.activate()).msisdn
    first = [f"a{i},{m},data,1000,{T}" for i in range(10)]
    await drop(world, s3, "usage-a.csv", first)
    [result] = await notified(worker)
    assert result.accepted == 10
    # The same object again (a redelivered notification): nothing happens.
    again = await ingest_file(
        world.sync._unit_of_work,
        s3,
        bucket=world.settings.usage_bucket,
        key="usage-a.csv",
        slice_rows=100,
    )
    assert again is None
    # Another file repeating half of the records.
    await drop(world, s3, "usage-b.csv", first[5:] + [f"b{i},{m},data,1000,{T}" for i in range(3)])
    [second] = await notified(worker)
    assert (second.accepted, second.duplicates) == (3, 5)
    [daily] = await rows(world, "SELECT data_bytes FROM usage_daily")
    assert daily["data_bytes"] == 13_000
    assert len(await world.published("billing.usage.recorded.v1")) == 2


async def test_a_100k_record_file_is_ingested_in_bounded_memory(world: BillingWorld, storage):
    s3, _ = storage
    lines = [(await world.activate()).msisdn for _ in range(20)]
    body = (
        "\n".join(
            [HEADER] + [f"big-{i:07d},{lines[i % 20]},data,{1000 + i},{T}" for i in range(100_000)]
        ).encode()
        + b"\n"
    )
    await s3.put_object(Bucket=world.settings.usage_bucket, Key="big.csv", Body=body)
    size = len(body)
    del body

    tracemalloc.start()
    try:
        result = await ingest_file(
            world.sync._unit_of_work,
            s3,
            bucket=world.settings.usage_bucket,
            key="big.csv",
            slice_rows=1_000,
            chunk_bytes=64 * 1024,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result is not None
    assert (result.accepted, result.quarantined, result.lines) == (100_000, 0, 100_001)
    # Holding the file, or all of its parsed rows, would take several times its size.
    assert peak < size / 2, (peak, size)
    [total] = await rows(world, "SELECT sum(data_bytes) AS s FROM usage_daily")
    assert total["s"] == sum(1000 + i for i in range(100_000))
    assert len(await world.published("billing.usage.recorded.v1")) == 20


async def test_a_messy_file_keeps_its_line_numbers_and_its_good_records(
    world: BillingWorld, storage
):
    s3, worker = storage
    m = (await world.activate()).msisdn
    body = (
        "record_id,msisdn,usage_type,quantity,started_at\r\n"  # CRLF line ends
        f"c1,{m},sms,1,{T}\r\n"  # line 2: good
        f'c2,"{m},sms,1,{T}\r\n'  # line 3: a stray quote runs on to line 4
        f"c3,{m},sms,1,{T}\r\n"  # line 4: swallowed by line 3's quote
        f'c4",{m},sms,1,{T}\r\n'  # line 5: closes the quote
        f"c\x005,{m},sms,1,{T}\r\n"  # line 6: a NUL byte
        "\r\n"  # line 7: blank
        f"c6,{m},sms,1,{T}"  # line 8: good, no final newline
    ).encode() + b"\xff\xfe"  # and undecodable bytes after it
    await s3.put_object(Bucket=world.settings.usage_bucket, Key="messy.csv", Body=body)
    [result] = await notified(worker)
    assert result.accepted == 1  # c1 only: c6 ends in the undecodable bytes
    quarantined = await rows(
        world, "SELECT line_number, reason FROM usage_quarantine ORDER BY line_number"
    )
    assert [q["line_number"] for q in quarantined] == [5, 6, 8]
    assert quarantined[0]["reason"] == "expected 5 fields, found 6"  # lines 3-5 as one
    assert quarantined[1]["reason"].startswith("record_id")


async def test_a_file_without_the_header_is_quarantined_line_by_line(world: BillingWorld, storage):
    s3, worker = storage
    m = (await world.activate()).msisdn
    await s3.put_object(
        Bucket=world.settings.usage_bucket,
        Key="headless.csv",
        Body=f"h1,{m},sms,1,{T}\nh2,{m},sms,1,{T}\n".encode(),
    )
    [result] = await notified(worker)
    # The first line is taken as a (wrong) header; the rest is read as records.
    assert (result.accepted, result.quarantined) == (1, 1)
    [q] = await rows(world, "SELECT line_number, reason FROM usage_quarantine")
    assert (q["line_number"], q["reason"]) == (1, "not the expected header line")
