"""Usage files in object storage: the bucket the network operator drops them into, its
object-created notifications, and the worker that ingests each announced file."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from mvno.billing_sync.settings import BillingSyncSettings
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
                    # An ingestion of a large file may take a minute; a crashed worker's file is
                    # retaken after this, and a file failing five times is parked in the DLQ.
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
