"""Which service publishes to which topic and consumes which queue, and the AWS access that follows.

The topology (:mod:`mvno.common.bus.topology`) names producers and consumers; a deployed service
may own several of them (orders consumes its own queue and its provisioning work queue). This
module ties them to services, and derives each service's least-privilege IAM policy from that
alone: publish to its own topics, read its own queues (and look at their DLQs), and use its own
KMS key for personal data. A service may also read a file drop (:class:`FileDrop`): a bucket a
partner drops files into, announced on a queue of its own by S3's object-created notifications. The Terraform export (``--terraform``) writes these policies; a test
proves that no policy grants more than its entry needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mvno.common.bus.topology import Queue, Topology, TopologyError

# What the bus code calls (relay: ListTopics to resolve its topic by name, PublishBatch; consumer:
# GetQueueUrl, GetQueueAttributes, ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibility[Batch];
# personal data: GenerateDataKey, Decrypt, DescribeKey). Batch calls authorise as the single action.
PUBLISH_ACTIONS = ("sns:Publish",)
LIST_TOPICS_ACTIONS = ("sns:ListTopics",)  # no resource-level permission exists for it
CONSUME_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
)
DLQ_ACTIONS = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl")
PERSONAL_DATA_KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey")
# The bus key encrypts topics and queues: SNS needs a data key from the publisher's side, SQS
# decrypts for the consumer; each only through that AWS service (kms:ViaService).
BUS_KEY_PUBLISH_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
BUS_KEY_CONSUME_ACTIONS = ("kms:Decrypt",)
# A file drop's reader: HeadObject and GetObject (both authorised as s3:GetObject) on the objects;
# GetQueueUrl, ReceiveMessage and DeleteMessage on the notification queue (no visibility changes:
# a failed file comes back after the timeout); Decrypt of the drop's key, through S3 and SQS.
FILE_DROP_OBJECT_ACTIONS = ("s3:GetObject",)
FILE_DROP_QUEUE_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage")
FILE_DROP_KEY_ACTIONS = ("kms:Decrypt",)


@dataclass(frozen=True)
class FileDrop:
    """A bucket a partner drops files into, each new object announced on the reader's queue.

    ``name`` is the Terraform label of the bucket, its queue and its key (``usage-files`` →
    ``aws_s3_bucket.usage_files``, ``aws_sqs_queue.usage_files``, ``aws_kms_key.usage_files``,
    written by hand in infra/terraform); the queue names are the reader's settings.
    """

    name: str
    queue_name: str
    dlq_name: str
    visibility_timeout: int = 300
    max_receive_count: int = 5
    retention_seconds: int = 4 * 24 * 3600
    dlq_retention_seconds: int = 14 * 24 * 3600

    def __post_init__(self) -> None:
        # The same rules as the bus's queues (names, ranges, a DLQ that outlives its source).
        Queue(
            self.name,
            self.queue_name,
            self.dlq_name,
            visibility_timeout=self.visibility_timeout,
            retention_seconds=self.retention_seconds,
            dlq_retention_seconds=self.dlq_retention_seconds,
            max_receive_count=self.max_receive_count,
        )


USAGE_FILES = FileDrop(
    "usage-files", "mvno-billing-sync-usage-files", "mvno-billing-sync-usage-files-dlq"
)
"""The network operator's usage files, ingested by billing-sync's ``work`` processes (the queue
names are billing-sync's ``usage_files_queue`` setting and the DLQ its local set-up creates)."""


@dataclass(frozen=True)
class ServiceAccess:
    """A deployed service: the producers it publishes as and the consumers it reads as.

    A ``stateless`` one (the canary) keeps no database and seals no personal data, so it gets
    neither a database nor a personal-data key, nor any grant on one.
    """

    service: str
    publishes: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    reads_file_drops: tuple[FileDrop, ...] = ()
    stateless: bool = False


def platform_services() -> tuple[ServiceAccess, ...]:
    """The platform's services and their parts of :func:`~mvno.common.bus.topology.platform_topology`.

    Each ``publishes`` entry is the ``producer=`` of the service's app; each ``consumes`` entry the
    ``consumer=`` of its ``consume`` command or the queue of one of its workers.
    """
    return (
        ServiceAccess("catalog", publishes=("catalog",)),
        ServiceAccess("orders", publishes=("orders",), consumes=("orders", "orders-provisioning")),
        ServiceAccess(
            "billing-sync",
            publishes=("billing",),
            consumes=("billing-sync",),
            reads_file_drops=(USAGE_FILES,),
        ),
        ServiceAccess("portal-api", consumes=("portal-api",)),
        ServiceAccess("canary", publishes=("platform",), stateless=True),
    )


def check_services(topology: Topology, services: Sequence[ServiceAccess]) -> None:
    """Every topic has exactly one publishing service, every queue exactly one consuming service."""
    names = [s.service for s in services]
    if len(set(names)) != len(names):
        raise TopologyError(f"a service is listed twice: {names}")
    for what, owned, known in (
        (
            "producer",
            [p for s in services for p in s.publishes],
            [t.producer for t in topology.topics],
        ),
        (
            "consumer",
            [c for s in services for c in s.consumes],
            [q.consumer for q in topology.queues],
        ),
    ):
        for name in set(owned) - set(known):
            raise TopologyError(f"{what} {name!r} is not in the topology")
        for name in known:
            if owned.count(name) != 1:
                raise TopologyError(
                    f"{what} {name!r} must belong to exactly one service, not {owned.count(name)}"
                )
    drops = [d.name for s in services for d in s.reads_file_drops]
    if len(set(drops)) != len(drops):
        raise TopologyError(f"a file drop must have exactly one reading service: {drops}")
    queue_names = {n for q in topology.queues for n in (q.name, q.dlq_name)}
    for service in services:
        for drop in service.reads_file_drops:
            if {drop.queue_name, drop.dlq_name} & queue_names:
                raise TopologyError(f"file drop {drop.name!r} reuses a bus queue's name")


def label(name: str) -> str:
    """A Terraform label for a name (``billing-sync`` → ``billing_sync``)."""
    return name.replace("-", "_")


def topic_arn(producer: str) -> str:
    return f"${{aws_sns_topic.{label(producer)}.arn}}"


def queue_arn(consumer: str) -> str:
    return f"${{aws_sqs_queue.{label(consumer)}.arn}}"


def dlq_arn(consumer: str) -> str:
    return f"${{aws_sqs_queue.{label(consumer)}_dlq.arn}}"


def personal_data_key_arn(service: str) -> str:
    return f'${{aws_kms_key.personal_data["{service}"].arn}}'


BUS_KEY_ARN = "${aws_kms_key.bus.arn}"


def file_drop_objects_arn(drop: FileDrop) -> str:
    return f"${{aws_s3_bucket.{label(drop.name)}.arn}}/*"


def file_drop_queue_arn(drop: FileDrop) -> str:
    return f"${{aws_sqs_queue.{label(drop.name)}.arn}}"


def file_drop_key_arn(drop: FileDrop) -> str:
    return f"${{aws_kms_key.{label(drop.name)}.arn}}"


def _via(aws_service: str) -> dict[str, Any]:
    return {"StringEquals": {"kms:ViaService": f"{aws_service}.${{var.region}}.amazonaws.com"}}


def iam_policy(access: ServiceAccess) -> dict[str, Any]:
    """The service's IAM policy document, with Terraform references for the ARNs."""
    statements: list[dict[str, Any]] = []
    if access.publishes:
        statements += [
            {
                "Sid": "PublishToOwnTopics",
                "Effect": "Allow",
                "Action": list(PUBLISH_ACTIONS),
                "Resource": [topic_arn(p) for p in access.publishes],
            },
            {
                "Sid": "FindOwnTopicsByName",
                "Effect": "Allow",
                "Action": list(LIST_TOPICS_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "EncryptThroughSns",
                "Effect": "Allow",
                "Action": list(BUS_KEY_PUBLISH_ACTIONS),
                "Resource": BUS_KEY_ARN,
                "Condition": _via("sns"),
            },
        ]
    if access.consumes:
        statements += [
            {
                "Sid": "ConsumeOwnQueues",
                "Effect": "Allow",
                "Action": list(CONSUME_ACTIONS),
                "Resource": [queue_arn(c) for c in access.consumes],
            },
            {
                "Sid": "WatchOwnDeadLetterQueues",
                "Effect": "Allow",
                "Action": list(DLQ_ACTIONS),
                "Resource": [dlq_arn(c) for c in access.consumes],
            },
            {
                "Sid": "DecryptThroughSqs",
                "Effect": "Allow",
                "Action": list(BUS_KEY_CONSUME_ACTIONS),
                "Resource": BUS_KEY_ARN,
                "Condition": _via("sqs"),
            },
        ]
    for drop in access.reads_file_drops:
        sid = "".join(part.capitalize() for part in drop.name.split("-"))
        statements += [
            {
                "Sid": f"Read{sid}Objects",
                "Effect": "Allow",
                "Action": list(FILE_DROP_OBJECT_ACTIONS),
                "Resource": file_drop_objects_arn(drop),
            },
            {
                "Sid": f"Consume{sid}Notifications",
                "Effect": "Allow",
                "Action": list(FILE_DROP_QUEUE_ACTIONS),
                "Resource": file_drop_queue_arn(drop),
            },
            {
                "Sid": f"Decrypt{sid}ThroughS3AndSqs",
                "Effect": "Allow",
                "Action": list(FILE_DROP_KEY_ACTIONS),
                "Resource": file_drop_key_arn(drop),
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [
                            "s3.${var.region}.amazonaws.com",
                            "sqs.${var.region}.amazonaws.com",
                        ]
                    }
                },
            },
        ]
    if not access.stateless:
        statements.append(
            {
                "Sid": "SealOwnPersonalData",
                "Effect": "Allow",
                "Action": list(PERSONAL_DATA_KEY_ACTIONS),
                "Resource": personal_data_key_arn(access.service),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


QUEUE_DEPTH_ACTIONS = ("sqs:GetQueueAttributes",)


def autoscaler_iam_policy(
    topology: Topology, services: Sequence[ServiceAccess] = ()
) -> dict[str, Any]:
    """The policy of KEDA's own role: read the depth of the queues its workers consume (the bus's
    and the file drops' notification queues), nothing else.

    KEDA scales each worker on its queue with this role (``identityOwner: keda``) rather than by
    assuming the service's role, which would let the autoscaler do all that the service may.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadQueueDepth",
                "Effect": "Allow",
                "Action": list(QUEUE_DEPTH_ACTIONS),
                "Resource": [queue_arn(q.consumer) for q in topology.queues]
                + [file_drop_queue_arn(d) for s in services for d in s.reads_file_drops],
            }
        ],
    }


def to_terraform_locals(
    topology: Topology, services: Sequence[ServiceAccess]
) -> dict[str, dict[str, Any]]:
    """``locals`` for the Terraform export: the services (for IRSA roles), those with state (for
    their databases and personal-data keys), their IAM policies, the autoscaler's, the queues (for the CloudWatch alarms), and the file drops
    (for their hand-written buckets, queues and keys)."""
    check_services(topology, services)
    return {
        "services": {
            s.service: {"publishes": list(s.publishes), "consumes": list(s.consumes)}
            for s in services
        },
        "stateful_services": {
            s.service: {"publishes": list(s.publishes), "consumes": list(s.consumes)}
            for s in services
            if not s.stateless
        },
        "service_iam_policies": {s.service: iam_policy(s) for s in services},
        "autoscaler_iam_policy": autoscaler_iam_policy(topology, services),
        "bus_queues": {
            q.consumer: {"name": q.name, "dlq_name": q.dlq_name} for q in topology.queues
        },
        "file_drops": {
            d.name: {
                "reader": s.service,
                "queue_name": d.queue_name,
                "dlq_name": d.dlq_name,
                "visibility_timeout_seconds": d.visibility_timeout,
                "message_retention_seconds": d.retention_seconds,
                "dlq_message_retention_seconds": d.dlq_retention_seconds,
                "max_receive_count": d.max_receive_count,
            }
            for s in services
            for d in s.reads_file_drops
        },
    }
