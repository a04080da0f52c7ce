"""Usage files in object storage: the bucket the network operator drops them into, its
object-created notifications, and the worker that ingests each announced file."""

from __future__ import annotations

import asyncio
import codecs
import csv
import json
import logging
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from mvno.billing_sync import metrics
from mvno.billing_sync.domain.usage import HEADER, InvalidRecord, validate
from mvno.billing_sync.ingest import Batch, BatchResult, QuarantineRow
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.aws import aws_client

_log = logging.getLogger(__name__)


async def ensure_usage_bucket(settings: BillingSyncSettings) -> str:
    """Create (if missing) the usage bucket, the notification queue with its DLQ, and the
    bucket's object-created notifications to it. Returns the queue URL. Local stand-in for
    Terraform; safe to run again."""
    async with aws_client(settings, "sqs") as sqs, aws_client(settings, "s3") as s3:
        dlq_url = (await sqs.create_queue(QueueName=settings.usage_files_queue + "-dlq"))[
            "QueueUrl"
        ]
        dlq_arn = await _queue_arn(sqs, dlq_url)
        queue_url = (
            await sqs.create_queue(
                QueueName=settings.usage_files_queue,
                Attributes={
                    # Longer than the largest file's ingestion takes: a crashed worker's file is
                    # retaken after it, and a file failing every receive is parked in the DLQ.
                    "VisibilityTimeout": "300",
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
                    ),
                },
            )
        )["QueueUrl"]
        queue_arn = await _queue_arn(sqs, queue_url)
        try:
            await s3.head_bucket(Bucket=settings.usage_bucket)
        except ClientError:
            await s3.create_bucket(
                Bucket=settings.usage_bucket,
                CreateBucketConfiguration={"LocationConstraint": settings.aws_region},
            )
        await s3.put_bucket_notification_configuration(
            Bucket=settings.usage_bucket,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
    _log.info("usage bucket %s notifies %s", settings.usage_bucket, settings.usage_files_queue)
    return str(queue_url)


async def _queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


# --- ingesting one file -----------------------------------------------------------------------


class _Lines:
    """Splits a byte stream into text lines, chunk by chunk, keeping the unfinished last line."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._rest = ""

    def feed(self, chunk: bytes) -> list[str]:
        # NUL stops the csv module and PostgreSQL text alike; as U+FFFD it fails validation instead.
        text = self._rest + self._decoder.decode(chunk).replace("\x00", "\ufffd")
        lines = text.split("\n")
        self._rest = lines.pop()
        return lines

    def close(self) -> list[str]:
        text = self._rest + self._decoder.decode(b"", final=True).replace("\x00", "\ufffd")
        self._rest = ""
        return [text] if text else []


def _content(line: str) -> str:
    return line[:300]


class _FileParser:
    """Validates lines into staged rows and quarantined lines, flushing a slice at a time."""

    def __init__(self, batch: Batch, *, slice_rows: int) -> None:
        self.batch = batch
        self.slice_rows = slice_rows
        self.line_number = 0
        self.good: list[tuple[Any, ...]] = []
        self.bad: list[QuarantineRow] = []

    async def take(self, lines: list[str]) -> None:
        # ``line_num`` counts the lines a record took: a stray quote that runs a record over the
        # next lines (quarantined as one bad record) does not shift the numbers of later ones.
        reader = csv.reader(lines)
        first = self.line_number
        for fields in reader:
            number = first + reader.line_num
            if number == 1:
                if tuple(f.strip().lower() for f in fields) != HEADER:
                    self.bad.append(
                        (1, None, "not the expected header line", _content(",".join(fields)))
                    )
                continue
            if not fields:
                continue  # a blank line
            try:
                self.good.append((number, *validate(fields)))
            except InvalidRecord as error:
                self.bad.append((number, None, str(error), _content(",".join(fields))))
        self.line_number = first + len(lines)
        if len(self.good) >= self.slice_rows or len(self.bad) >= self.slice_rows:
            await self.flush()

    async def flush(self) -> None:
        await self.batch.stage(self.good)
        await self.batch.quarantine(self.bad)
        self.good, self.bad = [], []
        self.batch.lines = self.line_number


async def ingest_file(
    unit_of_work: Callable[[], BillingUnitOfWork],
    s3: Any,
    *,
    bucket: str,
    key: str,
    slice_rows: int,
    chunk_bytes: int = 1 << 20,
) -> BatchResult | None:
    """Ingest one usage file, streamed; ``None`` when this version of it was ingested before."""
    async with unit_of_work() as uow:
        head = await s3.head_object(Bucket=bucket, Key=key)
        etag = str(head["ETag"]).strip('"')
        # One ingestion of a file version at a time, whichever worker got the notification.
        await uow.usage.lock_file_version(lock_key=f"usage-file:{bucket}/{key}/{etag}")
        if await uow.usage.file_version_ingested(bucket=bucket, object_key=key, etag=etag):
            _log.info("usage file s3://%s/%s (%s) was ingested before", bucket, key, etag)
            return None
        batch = Batch(uow, batch_id=str(uuid.uuid4()), source="usage_file")
        await batch.open()
        parser = _FileParser(batch, slice_rows=slice_rows)
        body = (await s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"]))["Body"]
        lines = _Lines()
        try:
            async for chunk in body.iter_chunks(chunk_bytes):
                await parser.take(lines.feed(chunk))
        finally:
            body.close()
        await parser.take(lines.close())
        await parser.flush()
        result = await batch.finish(bucket=bucket, object_key=key, etag=etag)
        await uow.commit()
    metrics.batch_committed(result, source="usage_file")
    _log.info(
        "usage file s3://%s/%s: %d lines, %d recorded, %d duplicates, %d quarantined",
        bucket,
        key,
        result.lines,
        result.accepted,
        result.duplicates,
        result.quarantined,
    )
    return result


def created_objects(body: str) -> list[tuple[str, str]]:
    """(bucket, key) of each object-created record in an S3 notification; none in a test event."""
    message = json.loads(body)
    found = []
    for record in message.get("Records", []):
        if str(record.get("eventName", "")).startswith("ObjectCreated:"):
            s3 = record["s3"]
            found.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    return found


class UsageFileWorker:
    """Long-polls the notification queue and ingests each announced file.

    A message is deleted only after its files committed; a failure leaves it to come back after
    the visibility timeout, and after five receives it is parked in the queue's DLQ.
    """

    def __init__(
        self,
        *,
        unit_of_work: Callable[[], BillingUnitOfWork],
        s3: Any,
        sqs: Any,
        queue_url: str,
        settings: BillingSyncSettings,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._s3 = s3
        self._sqs = sqs
        self._queue_url = queue_url
        self._settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.receive_once(wait_seconds=5)
            except Exception:
                _log.exception("usage file notifications: receive failed; trying again")
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2)

    async def receive_once(self, *, wait_seconds: int = 0) -> list[BatchResult | None]:
        answer = await self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds
        )
        results: list[BatchResult | None] = []
        for message in answer.get("Messages", []):
            try:
                for bucket, key in created_objects(message["Body"]):
                    results.append(
                        await ingest_file(
                            self._unit_of_work,
                            self._s3,
                            bucket=bucket,
                            key=key,
                            slice_rows=self._settings.usage_batch_rows,
                        )
                    )
            except Exception:
                _log.exception("ingesting a usage file failed; its notification comes back")
                continue
            await self._sqs.delete_message(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return results
