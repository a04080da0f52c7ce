"""Create the bus topology on an AWS-compatible endpoint, idempotently, or look it up.

:func:`provision` is safe to run again and again (and by several processes at once): topics and
queues are created when missing and their attributes set to what the topology says;
subscriptions are made once per (topic, queue), brought up to date, and those between the
topology's own topics and queues that the topology no longer lists are removed. :func:`resolve`
only looks things up, for a service at start-up.

CLI: ``python -m mvno.common.bus.provision [--prefix mvno] [--resolve]`` with the ``MVNO_AWS_*``
settings (and ``MVNO_BUS_PREFIX``) from the environment; prints the ARNs and URLs as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mvno.common.aws import aws_client
from mvno.common.bus.topology import Queue, Topology, platform_topology, queue_policy
from mvno.common.settings import ServiceSettings


class BusNotProvisionedError(LookupError):
    """Topics or queues of the topology do not exist on the endpoint."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            "bus not provisioned, missing: "
            + ", ".join(missing)
            + " (run `python -m mvno.common.bus.provision`)"
        )
        self.missing = tuple(missing)


@dataclass(frozen=True)
class ProvisionedTopology:
    """Where the topology lives: topic ARNs by producer; queue and DLQ URLs and ARNs by consumer."""

    topic_arns: Mapping[str, str]
    queue_urls: Mapping[str, str]
    queue_arns: Mapping[str, str]
    dlq_urls: Mapping[str, str]
    dlq_arns: Mapping[str, str]

    def to_json(self) -> dict[str, dict[str, str]]:
        """A JSON-ready copy."""
        return {name: dict(value) for name, value in asdict(self).items()}


async def provision(settings: ServiceSettings, topology: Topology) -> ProvisionedTopology:
    """Create or update every topic, queue, DLQ, queue policy and subscription of ``topology``."""
    async with aws_client(settings, "sns") as sns, aws_client(settings, "sqs") as sqs:
        topic_arns: dict[str, str] = {}
        for topic in topology.topics:
            # CreateTopic with only a name returns the existing topic's ARN; with attributes it
            # would fail on a topic whose attributes differ.
            created = await sns.create_topic(Name=topic.name)
            topic_arns[topic.producer] = created["TopicArn"]

        # Queues are independent of each other, and so are topics' subscriptions: set them up
        # concurrently (a TaskGroup cancels the rest when one fails).
        async with asyncio.TaskGroup() as group:
            pairs = {
                queue.consumer: group.create_task(
                    _ensure_queue_pair(sqs, queue, topology, topic_arns)
                )
                for queue in topology.queues
            }
        queue_urls = {consumer: pair.result()[0][0] for consumer, pair in pairs.items()}
        dlq_urls = {consumer: pair.result()[0][1] for consumer, pair in pairs.items()}
        queue_arns = {consumer: pair.result()[1][0] for consumer, pair in pairs.items()}
        dlq_arns = {consumer: pair.result()[1][1] for consumer, pair in pairs.items()}

        async with asyncio.TaskGroup() as group:
            for producer, topic_arn in topic_arns.items():
                group.create_task(
                    _ensure_topic_subscriptions(sns, topology, producer, topic_arn, queue_arns)
                )
    return ProvisionedTopology(topic_arns, queue_urls, queue_arns, dlq_urls, dlq_arns)


async def resolve(
    settings: ServiceSettings,
    topology: Topology,
    *,
    producers: Collection[str] | None = None,
    consumers: Collection[str] | None = None,
) -> ProvisionedTopology:
    """Look up the ARNs and URLs of ``topology`` without creating anything.

    ``producers``/``consumers`` narrow the lookup to what a service needs (its own topic and
    queue; an empty collection looks up none); by default everything is resolved. Raises :class:`BusNotProvisionedError` naming
    every missing topic or queue.
    """
    topics = [t for t in topology.topics if producers is None or t.producer in producers]
    queues = [q for q in topology.queues if consumers is None or q.consumer in consumers]
    unknown = sorted(
        set(producers or ()) - {t.producer for t in topics}
        | set(consumers or ()) - {q.consumer for q in queues}
    )
    if unknown:
        raise KeyError(f"not in the topology: {', '.join(unknown)}")

    missing: list[str] = []
    topic_arns: dict[str, str] = {}
    queue_urls: dict[str, str] = {}
    queue_arns: dict[str, str] = {}
    dlq_urls: dict[str, str] = {}
    dlq_arns: dict[str, str] = {}
    if topics:
        async with aws_client(settings, "sns") as sns:
            # SNS has no lookup by name; the ARN's last part is the name.
            existing = {arn.rsplit(":", 1)[-1]: arn for arn in await _list_topic_arns(sns)}
        for topic in topics:
            if topic.name in existing:
                topic_arns[topic.producer] = existing[topic.name]
            else:
                missing.append(f"topic {topic.name}")
    if queues:
        async with aws_client(settings, "sqs") as sqs:
            for queue in queues:
                for name, urls, arns in (
                    (queue.name, queue_urls, queue_arns),
                    (queue.dlq_name, dlq_urls, dlq_arns),
                ):
                    found = await find_queue(sqs, name)
                    if found is None:
                        missing.append(f"queue {name}")
                    else:
                        urls[queue.consumer], arns[queue.consumer] = found
    if missing:
        raise BusNotProvisionedError(missing)
    return ProvisionedTopology(topic_arns, queue_urls, queue_arns, dlq_urls, dlq_arns)


async def _ensure_queue_pair(
    sqs: Any, queue: Queue, topology: Topology, topic_arns: Mapping[str, str]
) -> tuple[tuple[str, str], tuple[str, str]]:
    dlq_attributes = queue.dlq_attributes(source_arn="")
    del dlq_attributes["RedriveAllowPolicy"]  # names the source queue, which may not exist yet
    dlq_url, dlq_arn = await _ensure_queue(sqs, queue.dlq_name, dlq_attributes)
    # Created bare when new: its policy names its own ARN, known only once it exists. No
    # subscription delivers to it before the attributes below are set.
    url, arn = await _ensure_queue(sqs, queue.name, {})

    sources = [topic_arns[sub.producer] for sub in topology.subscriptions_of(queue.consumer)]
    policy = queue_policy(arn, sources) if sources else None
    # Set on every run: CreateQueue never changes an existing queue.
    await sqs.set_queue_attributes(
        QueueUrl=url, Attributes=queue.attributes(dlq_arn=dlq_arn, policy=policy)
    )
    await sqs.set_queue_attributes(
        QueueUrl=dlq_url, Attributes=queue.dlq_attributes(source_arn=arn)
    )
    return (url, dlq_url), (arn, dlq_arn)


async def _ensure_queue(
    sqs: Any, name: str, attributes_when_created: dict[str, str]
) -> tuple[str, str]:
    found = await find_queue(sqs, name)
    if found is not None:
        return found
    # Two provisioners racing here both succeed: CreateQueue returns an existing queue when the
    # attributes it is given match.
    created = await sqs.create_queue(QueueName=name, Attributes=attributes_when_created)
    url: str = created["QueueUrl"]
    return url, await _queue_arn(sqs, url)


async def find_queue(sqs: Any, name: str) -> tuple[str, str] | None:
    """The URL and ARN of the queue ``name`` through the SQS client ``sqs``, or None."""
    try:
        url: str = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return None
    return url, await _queue_arn(sqs, url)


async def _queue_arn(sqs: Any, url: str) -> str:
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    arn: str = response["Attributes"]["QueueArn"]
    return arn


async def _list_topic_arns(sns: Any) -> list[str]:
    arns: list[str] = []
    async for page in sns.get_paginator("list_topics").paginate():
        arns.extend(topic["TopicArn"] for topic in page.get("Topics", []))
    return arns


async def list_topic_subscriptions(sns: Any, topic_arn: str) -> list[dict[str, Any]]:
    """Every subscription of ``topic_arn`` (SubscriptionArn, Protocol, Endpoint, ...)."""
    subscriptions: list[dict[str, Any]] = []
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    async for page in paginator.paginate(TopicArn=topic_arn):
        subscriptions.extend(page.get("Subscriptions", []))
    return subscriptions


async def _ensure_topic_subscriptions(
    sns: Any,
    topology: Topology,
    producer: str,
    topic_arn: str,
    queue_arns: Mapping[str, str],
) -> None:
    wanted = {sub.consumer: sub for sub in topology.subscriptions if sub.producer == producer}
    consumer_by_arn = {arn: consumer for consumer, arn in queue_arns.items()}
    seen: set[str] = set()
    for existing in await list_topic_subscriptions(sns, topic_arn):
        consumer = consumer_by_arn.get(existing.get("Endpoint", ""))
        if existing.get("Protocol") != "sqs" or consumer is None:
            continue  # not ours to manage (an operator's e-mail, another system's queue)
        arn = existing["SubscriptionArn"]
        sub = wanted.get(consumer)
        if sub is None or consumer in seen:
            # Dropped from the topology, or a duplicate that would deliver twice.
            if arn.startswith("arn:"):
                await sns.unsubscribe(SubscriptionArn=arn)
            continue
        seen.add(consumer)
        if arn.startswith("arn:"):  # not "PendingConfirmation"
            await _update_subscription(sns, arn, sub.attributes())
    for consumer, sub in wanted.items():
        if consumer not in seen:
            await sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=queue_arns[consumer],
                Attributes=sub.attributes(),
                ReturnSubscriptionArn=True,
            )


async def _update_subscription(sns: Any, arn: str, attributes: dict[str, str]) -> None:
    current = (await sns.get_subscription_attributes(SubscriptionArn=arn))["Attributes"]
    for name, value in attributes.items():
        if not _same_attribute(name, current.get(name), value):
            # Only changed values are written: a new filter policy takes minutes to propagate in
            # AWS, and rewriting an unchanged one would restart that for nothing.
            await sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName=name, AttributeValue=value
            )


def _same_attribute(name: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if name == "FilterPolicy":
        try:
            return bool(json.loads(current) == json.loads(wanted))
        except ValueError:
            return False
    return current.lower() == wanted.lower()


async def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mvno.common.bus.provision", description=__doc__
    )
    parser.add_argument("--prefix", help="resource name prefix (default: MVNO_BUS_PREFIX)")
    parser.add_argument(
        "--resolve", action="store_true", help="only look the topology up; create nothing"
    )
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    topology = platform_topology(args.prefix or settings.bus_prefix)
    try:
        result = await (resolve if args.resolve else provision)(settings, topology)
    except BusNotProvisionedError as exc:
        print(json.dumps({"error": str(exc), "missing": list(exc.missing)}))
        return 1
    print(json.dumps(result.to_json()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: provision (or ``--resolve``) the platform topology, print it as JSON."""
    return asyncio.run(_main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
