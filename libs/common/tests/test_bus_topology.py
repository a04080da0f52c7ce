"""The bus topology: its rules, its Terraform export, and provisioning on the real SNS/SQS protocol."""

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mvno.common.aws import aws_client
from mvno.common.bus.access import platform_services
from mvno.common.bus.provision import (
    BusNotProvisionedError,
    list_topic_subscriptions,
    provision,
    resolve,
)
from mvno.common.bus.topology import (
    Queue,
    Subscription,
    Topic,
    Topology,
    TopologyError,
    platform_topology,
    render_terraform,
    to_terraform_json,
)
from mvno.common.settings import ServiceSettings

TERRAFORM_FILE = Path("infra/terraform/bus.tf.json")

# Who receives what: the platform's wiring as the services rely on it (issues 4, 6, 7, 8).
EXPECTED_CONSUMERS = {
    "catalog.offering.launched.v1": {"orders", "billing-sync", "portal-api"},
    "catalog.offering.retired.v1": {"orders", "billing-sync", "portal-api"},
    "catalog.price.changed.v1": {"orders", "billing-sync", "portal-api"},
    "catalog.category.created.v1": {"portal-api"},
    "orders.order.completed.v1": {"portal-api"},
    "orders.subscription.activated.v1": {"billing-sync", "portal-api"},
    "orders.bundle.purchased.v1": {"billing-sync"},
    "orders.airtime.purchased.v2": {"billing-sync"},
    "billing.account.created.v1": {"orders"},
    "billing.balance.low.v1": {"portal-api"},
    "billing.usage.recorded.v1": {"portal-api"},
    "billing.bundle.depleted.v1": {"portal-api"},
    "billing.reconciliation.completed.v1": set(),
    "orders.provisioning.step_due.v1": {"orders-provisioning"},
    "platform.canary.failed.v1": {"portal-api"},
    "platform.canary.recovered.v1": {"portal-api"},
}


@pytest.fixture
def settings(clean_aws: str) -> ServiceSettings:
    return ServiceSettings(aws_endpoint_url=clean_aws)


# The topology itself ---------------------------------------------------------------------------


def test_platform_topology_names_follow_the_convention():
    topology = platform_topology("acme")
    assert {t.producer: t.name for t in topology.topics} == {
        "catalog": "acme-catalog-events",
        "orders": "acme-orders-events",
        "billing": "acme-billing-events",
        "platform": "acme-platform-events",
    }
    assert {q.consumer: (q.name, q.dlq_name) for q in topology.queues} == {
        "orders": ("acme-orders-events", "acme-orders-events-dlq"),
        "orders-provisioning": (
            "acme-orders-provisioning-events",
            "acme-orders-provisioning-events-dlq",
        ),
        "billing-sync": ("acme-billing-sync-events", "acme-billing-sync-events-dlq"),
        "portal-api": ("acme-portal-api-events", "acme-portal-api-events-dlq"),
    }
    assert not any(sub.consumer == "catalog" for sub in topology.subscriptions)


@pytest.mark.parametrize(("event_type", "consumers"), EXPECTED_CONSUMERS.items())
def test_each_event_type_reaches_the_consumers_that_need_it(event_type, consumers):
    assert platform_topology().consumers_of(event_type) == consumers


def test_queue_defaults():
    queue = platform_topology().queue("orders")
    assert queue.max_receive_count >= 5
    assert queue.visibility_timeout == 30
    assert queue.receive_wait_seconds == 20
    assert queue.retention_seconds == 4 * 24 * 3600
    assert queue.dlq_retention_seconds == 14 * 24 * 3600


@pytest.mark.parametrize(
    ("build", "complaint"),
    [
        (lambda: Queue("orders", "q", "q-dlq", max_receive_count=4), "maxReceiveCount"),
        (lambda: Queue("orders", "q", "q-dlq", receive_wait_seconds=21), "WaitTimeSeconds"),
        (lambda: Queue("orders", "q", "q-dlq", dlq_retention_seconds=60), "longer"),
        (lambda: Subscription("catalog", "orders"), "matches nothing"),
        (
            lambda: Subscription("catalog", "orders", type_prefixes=("orders.order.",)),
            "never matches",
        ),
        (lambda: Subscription("catalog", "orders", type_prefixes=("catalog.off",)), "aggregate"),
        (lambda: Subscription("catalog", "orders", types=("catalog.offering.launched",)), "v<N>"),
        (
            lambda: Topology(
                (Topic("catalog", "t"),),
                (Queue("orders", "q", "q-dlq"),),
                (Subscription("billing", "orders", types=("billing.account.created.v1",)),),
            ),
            "unknown producer",
        ),
        (
            lambda: Topology(
                (Topic("catalog", "t"),),
                (Queue("orders", "q", "q-dlq"), Queue("portal-api", "q", "q2-dlq")),
                (),
            ),
            "duplicate queue name",
        ),
    ],
)
def test_a_topology_that_cannot_work_is_refused(build, complaint):
    with pytest.raises(TopologyError, match=complaint):
        build()


def test_subscription_matching_mirrors_its_filter_policy():
    sub = Subscription(
        "orders",
        "portal-api",
        type_prefixes=("orders.order.",),
        types=("orders.subscription.activated.v1",),
    )
    assert sub.filter_policy() == {
        "type": [{"prefix": "orders.order."}, "orders.subscription.activated.v1"]
    }
    assert sub.matches("orders.order.placed.v3")
    assert sub.matches("orders.subscription.activated.v1")
    assert not sub.matches("orders.subscription.activated.v2")
    assert not sub.matches("orders.orders.placed.v1")


# Terraform export ------------------------------------------------------------------------------


def test_committed_terraform_is_generated_from_the_topology(repository_root: Path):
    committed = (repository_root / TERRAFORM_FILE).read_text()
    assert committed == render_terraform(platform_topology()), (
        "infra/terraform/bus.tf.json is stale: run "
        "`python -m mvno.common.bus.topology --terraform infra/terraform/bus.tf.json`"
    )


def test_terraform_check_command_detects_a_stale_file(tmp_path: Path):
    target = tmp_path / "bus.tf.json"
    command = [sys.executable, "-m", "mvno.common.bus.topology", "--terraform", str(target)]
    assert subprocess.run([*command, "--check"], check=False).returncode == 1
    subprocess.run(command, check=True)
    assert json.loads(target.read_text()) == to_terraform_json(
        platform_topology(), platform_services()
    )
    assert subprocess.run([*command, "--check"], check=False).returncode == 0


def _reference(expression: str) -> str:
    match = re.fullmatch(r"\$\{([a-z_.]+)\}", expression)
    assert match, expression
    return match[1]


def test_terraform_every_queue_has_its_dlq_with_enough_receives():
    topology = platform_topology()
    doc = to_terraform_json(topology)
    queues = doc["resource"]["aws_sqs_queue"]
    redrive = doc["locals"]["bus_redrive_policies"]
    for queue in topology.queues:
        label = queue.consumer.replace("-", "_")
        main, dlq = queues[label], queues[f"{label}_dlq"]
        assert (main["name"], dlq["name"]) == (queue.name, queue.dlq_name)
        assert main["redrive_policy"] == f"${{jsonencode(local.bus_redrive_policies.{label})}}"
        assert redrive[label]["maxReceiveCount"] >= 5
        assert _reference(redrive[label]["deadLetterTargetArn"]) == f"aws_sqs_queue.{label}_dlq.arn"
        assert "redrive_policy" not in dlq
        assert dlq["message_retention_seconds"] == 14 * 24 * 3600
        for resource in (main, dlq):
            assert resource["kms_master_key_id"] == "${aws_kms_key.bus.arn}"
        allow = doc["resource"]["aws_sqs_queue_redrive_allow_policy"][f"{label}_dlq"]
        assert f"aws_sqs_queue.{label}.arn" in allow["redrive_allow_policy"]
    assert len(queues) == 2 * len(topology.queues)


def test_terraform_every_subscription_is_raw_and_filtered():
    topology = platform_topology()
    doc = to_terraform_json(topology)
    subscriptions = doc["resource"]["aws_sns_topic_subscription"]
    assert len(subscriptions) == len(topology.subscriptions)
    for sub in topology.subscriptions:
        consumer, producer = sub.consumer.replace("-", "_"), sub.producer
        resource = subscriptions[f"{consumer}_from_{producer}"]
        assert resource["protocol"] == "sqs"
        assert resource["raw_message_delivery"] is True
        assert resource["filter_policy_scope"] == "MessageAttributes"
        assert json.loads(resource["filter_policy"]) == sub.filter_policy()
        assert _reference(resource["topic_arn"]) == f"aws_sns_topic.{producer}.arn"
        assert _reference(resource["endpoint"]) == f"aws_sqs_queue.{consumer}.arn"


def test_terraform_queue_policies_admit_only_the_subscribed_topics():
    topology = platform_topology()
    doc = to_terraform_json(topology)
    for queue in topology.queues:
        label = queue.consumer.replace("-", "_")
        policy = doc["locals"]["bus_queue_policies"][label]
        (statement,) = policy["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert _reference(statement["Resource"]) == f"aws_sqs_queue.{label}.arn"
        sources = {_reference(arn) for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"]}
        assert sources == {
            f"aws_sns_topic.{sub.producer}.arn" for sub in topology.subscriptions_of(queue.consumer)
        }
        resource = doc["resource"]["aws_sqs_queue_policy"][label]
        assert resource["policy"] == f"${{jsonencode(local.bus_queue_policies.{label})}}"


def test_terraform_topics_are_encrypted_with_the_bus_key():
    doc = to_terraform_json(platform_topology())
    for topic in doc["resource"]["aws_sns_topic"].values():
        assert topic["kms_master_key_id"] == "${aws_kms_key.bus.arn}"


# Provisioning on the SNS/SQS protocol ----------------------------------------------------------


async def _subscriptions_by_topic(settings, provisioned):
    async with aws_client(settings, "sns") as sns:
        return {
            producer: await list_topic_subscriptions(sns, arn)
            for producer, arn in provisioned.topic_arns.items()
        }


async def test_provisioning_twice_gives_the_same_resources_and_no_duplicates(settings):
    topology = platform_topology()
    first = await provision(settings, topology)
    second = await provision(settings, topology)
    assert first == second
    assert set(first.topic_arns) == {"catalog", "orders", "billing", "platform"}
    assert (
        set(first.queue_urls)
        == set(first.dlq_urls)
        == {
            "orders",
            "orders-provisioning",
            "billing-sync",
            "portal-api",
        }
    )

    by_topic = await _subscriptions_by_topic(settings, second)
    consumer_of = {arn: consumer for consumer, arn in second.queue_arns.items()}
    found = sorted(
        (producer, consumer_of[sub["Endpoint"]])
        for producer, subs in by_topic.items()
        for sub in subs
    )
    assert found == sorted((sub.producer, sub.consumer) for sub in topology.subscriptions)


async def test_provisioned_attributes_match_the_topology(settings):
    topology = platform_topology()
    provisioned = await provision(settings, topology)
    async with aws_client(settings, "sqs") as sqs, aws_client(settings, "sns") as sns:
        for queue in topology.queues:
            attributes = (
                await sqs.get_queue_attributes(
                    QueueUrl=provisioned.queue_urls[queue.consumer], AttributeNames=["All"]
                )
            )["Attributes"]
            assert json.loads(attributes["RedrivePolicy"]) == {
                "deadLetterTargetArn": provisioned.dlq_arns[queue.consumer],
                "maxReceiveCount": 5,
            }
            assert attributes["VisibilityTimeout"] == "30"
            assert attributes["ReceiveMessageWaitTimeSeconds"] == "20"
            assert attributes["MessageRetentionPeriod"] == str(4 * 24 * 3600)
            assert attributes["SqsManagedSseEnabled"] == "true"
            statement = json.loads(attributes["Policy"])["Statement"][0]
            assert statement["Resource"] == provisioned.queue_arns[queue.consumer]
            assert sorted(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
                provisioned.topic_arns[sub.producer]
                for sub in topology.subscriptions_of(queue.consumer)
            )
            dlq = (
                await sqs.get_queue_attributes(
                    QueueUrl=provisioned.dlq_urls[queue.consumer], AttributeNames=["All"]
                )
            )["Attributes"]
            assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
            assert "RedrivePolicy" not in dlq
        for producer, subs in (await _subscriptions_by_topic(settings, provisioned)).items():
            for listed in subs:
                attributes = (
                    await sns.get_subscription_attributes(SubscriptionArn=listed["SubscriptionArn"])
                )["Attributes"]
                assert attributes["RawMessageDelivery"] == "true"
                consumer = next(
                    c for c, arn in provisioned.queue_arns.items() if arn == listed["Endpoint"]
                )
                expected = next(
                    s
                    for s in topology.subscriptions
                    if (s.producer, s.consumer) == (producer, consumer)
                )
                assert json.loads(attributes["FilterPolicy"]) == expected.filter_policy()


async def test_provisioning_repairs_drift(settings):
    topology = platform_topology()
    provisioned = await provision(settings, topology)
    async with aws_client(settings, "sqs") as sqs, aws_client(settings, "sns") as sns:
        orders_url = provisioned.queue_urls["orders"]
        await sqs.set_queue_attributes(
            QueueUrl=orders_url,
            Attributes={
                "VisibilityTimeout": "5",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": provisioned.dlq_arns["orders"], "maxReceiveCount": 1}
                ),
            },
        )
        by_topic = await _subscriptions_by_topic(settings, provisioned)
        portal_from_catalog = next(
            s["SubscriptionArn"]
            for s in by_topic["catalog"]
            if s["Endpoint"] == provisioned.queue_arns["portal-api"]
        )
        await sns.set_subscription_attributes(
            SubscriptionArn=portal_from_catalog,
            AttributeName="FilterPolicy",
            AttributeValue=json.dumps({"type": ["nothing.at.all.v1"]}),
        )
        billing_from_orders = next(
            s["SubscriptionArn"]
            for s in by_topic["orders"]
            if s["Endpoint"] == provisioned.queue_arns["billing-sync"]
        )
        await sns.unsubscribe(SubscriptionArn=billing_from_orders)
        # Not in the topology: orders does not consume its own events.
        await sns.subscribe(
            TopicArn=provisioned.topic_arns["orders"],
            Protocol="sqs",
            Endpoint=provisioned.queue_arns["orders"],
        )

        await provision(settings, topology)

        attributes = (await sqs.get_queue_attributes(QueueUrl=orders_url, AttributeNames=["All"]))[
            "Attributes"
        ]
        assert attributes["VisibilityTimeout"] == "30"
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 5
        assert "Policy" in attributes
        filter_policy = (
            await sns.get_subscription_attributes(SubscriptionArn=portal_from_catalog)
        )["Attributes"]["FilterPolicy"]
        assert json.loads(filter_policy) == {"type": [{"prefix": "catalog."}]}
    by_topic = await _subscriptions_by_topic(settings, provisioned)
    endpoints = sorted(s["Endpoint"] for s in by_topic["orders"])
    assert endpoints == sorted(
        [
            provisioned.queue_arns["billing-sync"],
            provisioned.queue_arns["orders-provisioning"],
            provisioned.queue_arns["portal-api"],
        ]
    )


async def test_resolve_finds_what_provision_made_and_names_what_is_missing(settings):
    topology = platform_topology()
    with pytest.raises(BusNotProvisionedError) as missing:
        await resolve(settings, topology)
    assert "topic mvno-catalog-events" in missing.value.missing
    assert "queue mvno-portal-api-events-dlq" in missing.value.missing

    provisioned = await provision(settings, topology)
    assert await resolve(settings, topology) == provisioned
    mine = await resolve(settings, topology, producers=["orders"], consumers=["orders"])
    assert mine.topic_arns == {"orders": provisioned.topic_arns["orders"]}
    assert mine.queue_urls == {"orders": provisioned.queue_urls["orders"]}
    assert mine.dlq_urls == {"orders": provisioned.dlq_urls["orders"]}
    with pytest.raises(KeyError, match="catalog"):
        await resolve(settings, topology, consumers=["catalog"])


async def _drain(sqs, url: str, expected: int, *, deadline_seconds: float = 10.0) -> list[dict]:
    """Receive until ``expected`` messages arrived (or the deadline), then check for strays."""
    messages: list[dict] = []
    deadline = time.monotonic() + deadline_seconds
    while len(messages) < expected and time.monotonic() < deadline:
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        messages.extend(response.get("Messages", []))
    response = await sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
    )
    return messages + response.get("Messages", [])


async def test_published_events_reach_exactly_the_filtered_queues_raw(settings):
    topology = platform_topology()
    provisioned = await provision(settings, topology)
    sent: dict[str, str] = {}
    async with aws_client(settings, "sns") as sns, aws_client(settings, "sqs") as sqs:
        for event_type in EXPECTED_CONSUMERS:
            body = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "type": event_type})
            sent[body] = event_type
            await sns.publish(
                TopicArn=provisioned.topic_arns[event_type.split(".")[0]],
                Message=body,
                MessageAttributes={"type": {"DataType": "String", "StringValue": event_type}},
            )
        # Without the `type` attribute no filter matches: nobody gets it.
        await sns.publish(TopicArn=provisioned.topic_arns["catalog"], Message='{"untyped": 1}')

        for consumer, url in provisioned.queue_urls.items():
            expected = {body for body, t in sent.items() if consumer in EXPECTED_CONSUMERS[t]}
            received = await _drain(sqs, url, len(expected))
            # Raw delivery: the body is the published message, not an SNS notification envelope.
            assert sorted(m["Body"] for m in received) == sorted(expected), consumer
            for message in received:
                assert message["MessageAttributes"]["type"] == {
                    "DataType": "String",
                    "StringValue": sent[message["Body"]],
                }


def test_provision_command_prints_the_resources(clean_aws: str):
    env = {"MVNO_AWS_ENDPOINT_URL": clean_aws, "PATH": ""}
    command = [sys.executable, "-m", "mvno.common.bus.provision"]
    missing = subprocess.run(
        [*command, "--resolve"], env=env, capture_output=True, text=True, check=False
    )
    assert missing.returncode == 1
    assert "mvno-orders-events" in missing.stdout
    made = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    found = subprocess.run(
        [*command, "--resolve"], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(made.stdout) == json.loads(found.stdout)
    assert json.loads(made.stdout)["queue_urls"]["billing-sync"].endswith(
        "mvno-billing-sync-events"
    )
