"""The bus topology, one source of truth for the local provisioner and for Terraform.

One SNS topic per producing service, one SQS queue per consuming service with its own dead-letter
queue, and one subscription per (producer, consumer) pair that delivers raw messages filtered on
the ``type`` message attribute. :func:`platform_topology` lists the platform's wiring;
:func:`to_terraform_json` renders any topology as Terraform JSON; ``provision`` creates it on an
AWS-compatible endpoint.

Run ``python -m mvno.common.bus.topology --terraform infra/terraform/bus.tf.json`` to regenerate
the committed Terraform file (``--check`` fails when the committed file is stale).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvno.common.bus.envelope import TYPE_ATTRIBUTE

if TYPE_CHECKING:
    from mvno.common.bus.access import ServiceAccess

FOUR_DAYS = 4 * 24 * 3600
FOURTEEN_DAYS = 14 * 24 * 3600
MIN_MAX_RECEIVE_COUNT = 5

# `<producer>.<aggregate>.<past-tense>.v<N>`, e.g. `orders.subscription.activated.v1`.
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*\.v[1-9][0-9]*$")
# A whole producer (`catalog.`) or one of its aggregates (`orders.subscription.`). The trailing dot
# keeps `orders.sub.` from also matching a future `orders.subscriber.*`.
TYPE_PREFIX = re.compile(r"^[a-z][a-z0-9-]*\.([a-z][a-z0-9_-]*\.)?$")
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class TopologyError(ValueError):
    """A topology that cannot work: unknown names, duplicates, filters that never match."""


@dataclass(frozen=True)
class Topic:
    """The SNS topic a producing service publishes all of its events to."""

    producer: str
    name: str

    def __post_init__(self) -> None:
        _check_name("producer", self.producer)
        _check_resource_name("topic", self.name)


@dataclass(frozen=True)
class Queue:
    """The SQS queue a consuming service reads, with its dead-letter queue and their attributes.

    moto honours the visibility timeout, long polling, retention and the redrive policy. It
    stores but ignores ``SqsManagedSseEnabled`` (nothing is encrypted) and the access ``Policy``
    (SNS delivers whatever it says), and accepts the DLQ's ``RedriveAllowPolicy`` without
    returning or enforcing it.
    """

    consumer: str
    name: str
    dlq_name: str
    visibility_timeout: int = 30
    receive_wait_seconds: int = 20
    retention_seconds: int = FOUR_DAYS
    dlq_retention_seconds: int = FOURTEEN_DAYS
    max_receive_count: int = MIN_MAX_RECEIVE_COUNT

    def __post_init__(self) -> None:
        _check_name("consumer", self.consumer)
        _check_resource_name("queue", self.name)
        _check_resource_name("dead-letter queue", self.dlq_name)
        # A poison message must get several chances (DESIGN.md: maxReceiveCount >= 5) before it is
        # parked; SQS itself caps the count at 1000.
        if not MIN_MAX_RECEIVE_COUNT <= self.max_receive_count <= 1000:
            raise TopologyError(
                f"{self.name}: maxReceiveCount must be {MIN_MAX_RECEIVE_COUNT}..1000, "
                f"not {self.max_receive_count}"
            )
        _check_range(self.name, "VisibilityTimeout", self.visibility_timeout, 0, 43_200)
        _check_range(self.name, "ReceiveMessageWaitTimeSeconds", self.receive_wait_seconds, 0, 20)
        _check_range(self.name, "MessageRetentionPeriod", self.retention_seconds, 60, FOURTEEN_DAYS)
        _check_range(
            self.dlq_name, "MessageRetentionPeriod", self.dlq_retention_seconds, 60, FOURTEEN_DAYS
        )
        # SQS moves a message to the DLQ keeping its original enqueue time, so a DLQ that keeps
        # messages no longer than its source would drop them as soon as they land.
        if self.dlq_retention_seconds <= self.retention_seconds:
            raise TopologyError(f"{self.dlq_name}: must retain messages longer than {self.name}")

    def redrive_policy(self, dlq_arn: str) -> dict[str, Any]:
        """The ``RedrivePolicy`` of the queue, pointing at its DLQ."""
        return {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count}

    def attributes(self, *, dlq_arn: str, policy: dict[str, Any] | None) -> dict[str, str]:
        """SQS attributes of the queue, as CreateQueue/SetQueueAttributes take them.

        ``policy`` is the access policy (:func:`queue_policy`); None removes any policy.
        """
        return {
            "VisibilityTimeout": str(self.visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": str(self.receive_wait_seconds),
            "MessageRetentionPeriod": str(self.retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(self.redrive_policy(dlq_arn)),
            # moto drops the Policy on any SetQueueAttributes call that omits it, so it always
            # travels with the other attributes.
            "Policy": json.dumps(policy) if policy else "",
        }

    def dlq_attributes(self, *, source_arn: str) -> dict[str, str]:
        """SQS attributes of the dead-letter queue, which accepts only this queue's messages."""
        return {
            "VisibilityTimeout": str(self.visibility_timeout),
            "MessageRetentionPeriod": str(self.dlq_retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedriveAllowPolicy": json.dumps(
                {"redrivePermission": "byQueue", "sourceQueueArns": [source_arn]}
            ),
        }


@dataclass(frozen=True)
class Subscription:
    """One consumer's subscription to one producer's topic, filtered on the event type.

    ``type_prefixes`` match whole producers or aggregates (``"catalog.offering."``), ``types``
    exact event types; a message matches when its ``type`` attribute matches either.
    """

    producer: str
    consumer: str
    type_prefixes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.type_prefixes and not self.types:
            raise TopologyError(f"{self.consumer} <- {self.producer}: the filter matches nothing")
        own = f"{self.producer}."
        for prefix in self.type_prefixes:
            if not TYPE_PREFIX.match(prefix):
                raise TopologyError(f"{prefix!r} is not `<producer>.` or `<producer>.<aggregate>.`")
            if not prefix.startswith(own):
                raise TopologyError(f"{prefix!r} never matches events of {self.producer}")
        for event_type in self.types:
            if not EVENT_TYPE.match(event_type):
                raise TopologyError(
                    f"{event_type!r} is not `<producer>.<aggregate>.<past-tense>.v<N>`"
                )
            if not event_type.startswith(own):
                raise TopologyError(f"{event_type!r} is not an event of {self.producer}")

    def filter_policy(self) -> dict[str, list[Any]]:
        """The SNS filter policy (scope ``MessageAttributes``) on the ``type`` attribute."""
        values: list[Any] = [{"prefix": prefix} for prefix in self.type_prefixes]
        values.extend(self.types)
        return {TYPE_ATTRIBUTE: values}

    def attributes(self) -> dict[str, str]:
        """SNS subscription attributes: raw delivery and the filter policy, in the order to set them."""
        return {
            "RawMessageDelivery": "true",
            # The scope first: SNS (and moto) validate a filter policy against the current scope.
            "FilterPolicyScope": "MessageAttributes",
            "FilterPolicy": json.dumps(self.filter_policy(), sort_keys=True),
        }

    def matches(self, event_type: str) -> bool:
        """Whether SNS delivers an event of ``event_type`` through this subscription."""
        return event_type in self.types or event_type.startswith(self.type_prefixes)


@dataclass(frozen=True)
class Topology:
    """Topics, queues and the subscriptions that join them; checked for consistency when built."""

    topics: tuple[Topic, ...]
    queues: tuple[Queue, ...]
    subscriptions: tuple[Subscription, ...]

    def __post_init__(self) -> None:
        _check_unique("producer", [topic.producer for topic in self.topics])
        _check_unique("consumer", [queue.consumer for queue in self.queues])
        # SNS and SQS are separate namespaces: a topic and a queue may share a name.
        _check_unique("topic name", [topic.name for topic in self.topics])
        _check_unique(
            "queue name", [name for queue in self.queues for name in (queue.name, queue.dlq_name)]
        )
        _check_unique(
            "subscription",
            [f"{sub.consumer} <- {sub.producer}" for sub in self.subscriptions],
        )
        producers = {topic.producer for topic in self.topics}
        consumers = {queue.consumer for queue in self.queues}
        for sub in self.subscriptions:
            if sub.producer not in producers:
                raise TopologyError(f"subscription to unknown producer {sub.producer!r}")
            if sub.consumer not in consumers:
                raise TopologyError(f"subscription of unknown consumer {sub.consumer!r}")

    def topic(self, producer: str) -> Topic:
        """The topic of ``producer``; :class:`KeyError` for an unknown producer."""
        for topic in self.topics:
            if topic.producer == producer:
                return topic
        raise KeyError(f"no topic for producer {producer!r}")

    def queue(self, consumer: str) -> Queue:
        """The queue of ``consumer``; :class:`KeyError` for an unknown consumer."""
        for queue in self.queues:
            if queue.consumer == consumer:
                return queue
        raise KeyError(f"no queue for consumer {consumer!r}")

    def subscriptions_of(self, consumer: str) -> tuple[Subscription, ...]:
        """Every subscription feeding ``consumer``'s queue."""
        return tuple(sub for sub in self.subscriptions if sub.consumer == consumer)

    def consumers_of(self, event_type: str) -> frozenset[str]:
        """The consumers whose queue receives an event of ``event_type``.

        A consumer can check at start-up that every type in its handler dict is delivered to it.
        """
        producer = event_type.split(".", 1)[0]
        return frozenset(
            sub.consumer
            for sub in self.subscriptions
            if sub.producer == producer and sub.matches(event_type)
        )


def platform_topology(prefix: str = "mvno") -> Topology:
    """The MVNO platform's topology; resource names start with ``prefix``.

    Subscriptions are by aggregate prefix so that a producer's new event or new version of an
    aggregate the consumer already follows is delivered without a topology change; each consumer
    acknowledges and logs the types it has no handler for.
    """
    _check_name("prefix", prefix)

    def topic(producer: str) -> Topic:
        return Topic(producer, f"{prefix}-{producer}-events")

    def queue(consumer: str) -> Queue:
        return Queue(consumer, f"{prefix}-{consumer}-events", f"{prefix}-{consumer}-events-dlq")

    return Topology(
        # ``platform`` is the canary's: probe outcomes that turned (failed, recovered).
        topics=(topic("catalog"), topic("orders"), topic("billing"), topic("platform")),
        queues=(
            queue("orders"),
            queue("orders-provisioning"),
            queue("billing-sync"),
            queue("portal-api"),
        ),
        subscriptions=(
            # orders keeps a local copy of the catalogue (so ordering works while catalog is down)
            # and its provisioning saga waits for billing-sync's billing account.
            Subscription(
                "catalog", "orders", type_prefixes=("catalog.offering.", "catalog.price.")
            ),
            Subscription("billing", "orders", type_prefixes=("billing.account.",)),
            # orders' provisioning workers share the saga's steps as work items on their own queue.
            Subscription("orders", "orders-provisioning", type_prefixes=("orders.provisioning.",)),
            # billing-sync keeps accounts in step with subscriptions, opens allowance buckets for
            # bundles, credits airtime and rates out-of-bundle usage from its catalogue copy.
            Subscription(
                "orders",
                "billing-sync",
                type_prefixes=("orders.subscription.", "orders.bundle.", "orders.airtime."),
            ),
            Subscription(
                "catalog", "billing-sync", type_prefixes=("catalog.offering.", "catalog.price.")
            ),
            # portal-api keeps the read model behind the customer's screens and pushes order
            # progress to the browser.
            Subscription(
                "orders", "portal-api", type_prefixes=("orders.order.", "orders.subscription.")
            ),
            Subscription(
                "billing",
                "portal-api",
                type_prefixes=("billing.balance.", "billing.usage.", "billing.bundle."),
            ),
            Subscription("catalog", "portal-api", type_prefixes=("catalog.",)),
            # ... and tells customers when a partner their order needs is failing or slow.
            Subscription("platform", "portal-api", type_prefixes=("platform.canary.",)),
        ),
    )


# Terraform -----------------------------------------------------------------------------------

BUS_KMS_KEY = "${aws_kms_key.bus.arn}"
"""The bus's customer-managed key, declared in infra/terraform/kms.tf."""


def terraform_name(name: str) -> str:
    """A Terraform resource label for a producer or consumer name (``billing-sync`` → ``billing_sync``)."""
    return name.replace("-", "_")


def to_terraform_json(
    topology: Topology, services: Sequence[ServiceAccess] | None = None
) -> dict[str, Any]:
    """The topology as a Terraform JSON configuration (``*.tf.json``) for the AWS provider.

    Part of the root module in ``infra/terraform``, whose hand-written files declare the provider
    and the bus's customer-managed KMS key ``aws_kms_key.bus`` (rotation on; its key policy lets
    SNS and SQS use it), which encrypts every topic and queue. Each queue's policy lets only the
    topics it subscribes to send to it, and each DLQ accepts only its own source queue.
    ``services`` (:func:`mvno.common.bus.access.platform_services`) adds the services, their
    least-privilege IAM policies and the queue names as ``locals`` for the IAM roles, KMS keys,
    databases and alarms.
    """
    topics: dict[str, Any] = {}
    queues: dict[str, Any] = {}
    redrive_allow: dict[str, Any] = {}
    queue_policies: dict[str, Any] = {}
    subscriptions: dict[str, Any] = {}
    redrive_locals: dict[str, Any] = {}
    policy_locals: dict[str, Any] = {}

    for topic in topology.topics:
        topics[terraform_name(topic.producer)] = {
            "name": topic.name,
            "kms_master_key_id": BUS_KMS_KEY,
            "tags": {"mvno:component": "event-bus", "mvno:producer": topic.producer},
        }

    for queue in topology.queues:
        label = terraform_name(queue.consumer)
        dlq = f"{label}_dlq"
        encryption = {
            "kms_master_key_id": BUS_KMS_KEY,
            "kms_data_key_reuse_period_seconds": 300,
        }
        tags = {"mvno:component": "event-bus", "mvno:consumer": queue.consumer}
        redrive_locals[label] = queue.redrive_policy(f"${{aws_sqs_queue.{dlq}.arn}}")
        queues[label] = {
            "name": queue.name,
            "visibility_timeout_seconds": queue.visibility_timeout,
            "receive_wait_time_seconds": queue.receive_wait_seconds,
            "message_retention_seconds": queue.retention_seconds,
            **encryption,
            "redrive_policy": f"${{jsonencode(local.bus_redrive_policies.{label})}}",
            "tags": tags,
        }
        queues[dlq] = {
            "name": queue.dlq_name,
            "visibility_timeout_seconds": queue.visibility_timeout,
            "message_retention_seconds": queue.dlq_retention_seconds,
            **encryption,
            "tags": {**tags, "mvno:dead-letter": "true"},
        }
        # A separate resource: inline on the DLQ it would reference the source queue, which
        # already references the DLQ through its redrive policy, and Terraform refuses the cycle.
        redrive_allow[dlq] = {
            "queue_url": f"${{aws_sqs_queue.{dlq}.id}}",
            "redrive_allow_policy": (
                f'${{jsonencode({{redrivePermission = "byQueue", '
                f"sourceQueueArns = [aws_sqs_queue.{label}.arn]}})}}"
            ),
        }
        source_topics = [
            f"${{aws_sns_topic.{terraform_name(sub.producer)}.arn}}"
            for sub in topology.subscriptions_of(queue.consumer)
        ]
        if source_topics:  # a work queue fed by its own service needs no SNS grant
            policy_locals[label] = queue_policy(f"${{aws_sqs_queue.{label}.arn}}", source_topics)
            queue_policies[label] = {
                "queue_url": f"${{aws_sqs_queue.{label}.id}}",
                "policy": f"${{jsonencode(local.bus_queue_policies.{label})}}",
            }

    for sub in topology.subscriptions:
        consumer = terraform_name(sub.consumer)
        subscriptions[f"{consumer}_from_{terraform_name(sub.producer)}"] = {
            "topic_arn": f"${{aws_sns_topic.{terraform_name(sub.producer)}.arn}}",
            "protocol": "sqs",
            "endpoint": f"${{aws_sqs_queue.{consumer}.arn}}",
            "raw_message_delivery": True,
            "filter_policy_scope": "MessageAttributes",
            "filter_policy": json.dumps(sub.filter_policy(), sort_keys=True),
            # Deliveries made before the queue policy exists would be refused and lost.
            "depends_on": [f"aws_sqs_queue_policy.{consumer}"],
        }

    locals_: dict[str, Any] = {
        "bus_redrive_policies": redrive_locals,
        "bus_queue_policies": policy_locals,
    }
    if services is not None:
        from mvno.common.bus.access import to_terraform_locals

        locals_.update(to_terraform_locals(topology, services))
    return {
        "//": "Generated by `python -m mvno.common.bus.topology --terraform`; do not edit.",
        "locals": locals_,
        "resource": {
            "aws_sns_topic": topics,
            "aws_sqs_queue": queues,
            "aws_sqs_queue_redrive_allow_policy": redrive_allow,
            "aws_sqs_queue_policy": queue_policies,
            "aws_sns_topic_subscription": subscriptions,
        },
        "output": {
            "bus_topic_arns": {
                "description": "SNS topic ARN by producer.",
                "value": {
                    topic.producer: f"${{aws_sns_topic.{terraform_name(topic.producer)}.arn}}"
                    for topic in topology.topics
                },
            },
            "bus_queue_urls": {
                "description": "SQS queue URL by consumer.",
                "value": {
                    queue.consumer: f"${{aws_sqs_queue.{terraform_name(queue.consumer)}.id}}"
                    for queue in topology.queues
                },
            },
            "bus_dlq_urls": {
                "description": "Dead-letter queue URL by consumer.",
                "value": {
                    queue.consumer: f"${{aws_sqs_queue.{terraform_name(queue.consumer)}_dlq.id}}"
                    for queue in topology.queues
                },
            },
        },
    }


def queue_policy(queue_arn: str, topic_arns: Sequence[str]) -> dict[str, Any]:
    """The queue's access policy: only SNS, and only from ``topic_arns``, may send to it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowSubscribedTopicsOnly",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": list(topic_arns)}},
            }
        ],
    }


def render_terraform(topology: Topology, services: Sequence[ServiceAccess] | None = None) -> str:
    """:func:`to_terraform_json` as the exact text of the committed file (with the platform's
    services unless ``services`` says otherwise)."""
    if services is None:
        from mvno.common.bus.access import platform_services

        services = platform_services()
    return json.dumps(to_terraform_json(topology, services), indent=2) + "\n"


# Helpers ---------------------------------------------------------------------------------------


def _check_name(what: str, value: str) -> None:
    if not _NAME.match(value):
        raise TopologyError(f"{what} {value!r} must be lower-case letters, digits and dashes")


def _check_resource_name(what: str, value: str) -> None:
    # SQS queue names: 1..80 of letters, digits, hyphens, underscores (SNS allows 256).
    if not re.match(r"^[A-Za-z0-9_-]{1,80}$", value):
        raise TopologyError(f"{what} name {value!r} is not a valid SQS/SNS name")


def _check_range(name: str, attribute: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise TopologyError(f"{name}: {attribute} must be {low}..{high}, not {value}")


def _check_unique(what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise TopologyError(f"duplicate {what} {value!r}")
        seen.add(value)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write (or ``--check``) the Terraform JSON, or print the topology's filter policies."""
    parser = argparse.ArgumentParser(prog="python -m mvno.common.bus.topology", description=__doc__)
    parser.add_argument("--prefix", default="mvno", help="resource name prefix (default: mvno)")
    parser.add_argument("--terraform", type=Path, help="write the Terraform JSON to this file")
    parser.add_argument(
        "--check", action="store_true", help="with --terraform: fail if the file is not current"
    )
    args = parser.parse_args(argv)
    topology = platform_topology(args.prefix)
    if args.terraform is None:
        for sub in topology.subscriptions:
            line = {
                "topic": topology.topic(sub.producer).name,
                "queue": topology.queue(sub.consumer).name,
                "filter_policy": sub.filter_policy(),
            }
            print(json.dumps(line))
        return 0
    text = render_terraform(topology)
    if args.check:
        current = args.terraform.read_text() if args.terraform.exists() else ""
        if current != text:
            print(f"{args.terraform} is stale: run without --check to regenerate", file=sys.stderr)
            return 1
        return 0
    args.terraform.parent.mkdir(parents=True, exist_ok=True)
    args.terraform.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
