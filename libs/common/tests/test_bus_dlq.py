"""Dead letters on the real SNS/SQS protocol: the redrive policy parks them, the tool shows and moves them back."""

import json
import subprocess
import sys
import time
import uuid

import pytest

from mvno.common.aws import aws_client
from mvno.common.bus.dlq import list_dead_letters, redrive, show
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import platform_topology
from mvno.common.settings import ServiceSettings

CONSUMER = "billing-sync"
EVENT_TYPE = "orders.subscription.activated.v1"


@pytest.fixture
def settings(clean_aws: str) -> ServiceSettings:
    return ServiceSettings(aws_endpoint_url=clean_aws)


@pytest.fixture
async def bus(settings):
    return await provision(settings, platform_topology())


def _event(event_type: str = EVENT_TYPE) -> tuple[str, str]:
    event_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/orders",
            "type": event_type,
            "datacontenttype": "application/json",
            "data": {"subscription_id": event_id},
        }
    )
    return event_id, body


async def _publish(settings, bus, body: str, *, event_type: str = EVENT_TYPE) -> None:
    async with aws_client(settings, "sns") as sns:
        await sns.publish(
            TopicArn=bus.topic_arns["orders"],
            Message=body,
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": event_type},
                "tenant": {"DataType": "String", "StringValue": "bank-a"},
            },
        )


async def _fail_until_dead(settings, url: str, body: str, *, deadline_seconds: float = 10.0) -> int:
    """Receive ``body`` without deleting it, as a failing handler would; the number of receives."""
    receives = 0
    deadline = time.monotonic() + deadline_seconds
    async with aws_client(settings, "sqs") as sqs:
        while time.monotonic() < deadline:
            # VisibilityTimeout 0 makes the message visible again at once: no waiting for 30 s.
            response = await sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
            )
            messages = [m for m in response.get("Messages", []) if m["Body"] == body]
            if not messages:
                attributes = await sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )
                if attributes["Attributes"]["ApproximateNumberOfMessages"] == "0":
                    return receives
            receives += len(messages)
    raise AssertionError(f"still in the source queue after {receives} receives")


async def _dead_letter(settings, bus) -> tuple[str, str]:
    event_id, body = _event()
    await _publish(settings, bus, body)
    receives = await _fail_until_dead(settings, bus.queue_urls[CONSUMER], body)
    assert receives == platform_topology().queue(CONSUMER).max_receive_count
    return event_id, body


def _without_trace_header(attributes: dict) -> dict:
    # When tracing is on in this process, the botocore instrumentation adds the X-Ray header.
    return {name: value for name, value in attributes.items() if name != "X-Amzn-Trace-Id"}


async def _receive_all(settings, url: str) -> list[dict]:
    async with aws_client(settings, "sqs") as sqs:
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        )
    return response.get("Messages", [])


async def test_a_failing_message_is_parked_after_max_receive_count_and_listed(settings, bus):
    event_id, body = await _dead_letter(settings, bus)

    letters = await list_dead_letters(settings, CONSUMER, wait_seconds=0)
    assert len(letters) == 1
    (letter,) = letters
    assert (letter.event_id, letter.event_type) == (event_id, EVENT_TYPE)
    assert letter.receive_count >= 5
    assert letter.first_received_at is not None
    assert letter.body == body
    # Listing leaves the message in the DLQ, visible to the next look.
    assert [m.message_id for m in await list_dead_letters(settings, CONSUMER, wait_seconds=0)] == [
        letter.message_id
    ]

    shown = await show(settings, CONSUMER, letter.message_id, wait_seconds=0)
    assert shown is not None
    assert _without_trace_header(shown.to_json()["message_attributes"]) == {
        "type": EVENT_TYPE,
        "tenant": "bank-a",
    }
    assert await show(settings, CONSUMER, "no-such-message", wait_seconds=0) is None


async def test_redrive_moves_the_message_back_intact(settings, bus):
    _event_id, body = await _dead_letter(settings, bus)

    result = await redrive(settings, CONSUMER, wait_seconds=0)

    assert (result.moved, result.failed, result.duplicated) == (1, 0, 0)
    assert await list_dead_letters(settings, CONSUMER, wait_seconds=0) == []
    (back,) = await _receive_all(settings, bus.queue_urls[CONSUMER])
    assert back["Body"] == body
    assert _without_trace_header(back["MessageAttributes"]) == {
        "type": {"DataType": "String", "StringValue": EVENT_TYPE},
        "tenant": {"DataType": "String", "StringValue": "bank-a"},
    }


async def test_redrive_moves_only_the_chosen_messages(settings, bus):
    await _dead_letter(settings, bus)
    await _dead_letter(settings, bus)
    first, second = await list_dead_letters(settings, CONSUMER, wait_seconds=0)

    result = await redrive(
        settings, CONSUMER, message_ids=[second.message_id, "gone"], wait_seconds=0
    )

    assert (result.moved, result.failed, result.not_found) == (1, 0, ("gone",))
    assert [m.message_id for m in await list_dead_letters(settings, CONSUMER, wait_seconds=0)] == [
        first.message_id
    ]
    (back,) = await _receive_all(settings, bus.queue_urls[CONSUMER])
    assert back["Body"] == second.body


async def test_limits_cap_listing_and_redrive(settings, bus):
    async with aws_client(settings, "sqs") as sqs:
        for _ in range(12):
            _event_id, body = _event()
            await sqs.send_message(QueueUrl=bus.dlq_urls[CONSUMER], MessageBody=body)
        # A poison message need not be JSON at all; it is still listed.
        await sqs.send_message(
            QueueUrl=bus.dlq_urls[CONSUMER],
            MessageBody="not json",
            MessageAttributes={"type": {"DataType": "String", "StringValue": EVENT_TYPE}},
        )

    assert len(await list_dead_letters(settings, CONSUMER, limit=5, wait_seconds=0)) == 5
    everything = await list_dead_letters(settings, CONSUMER, wait_seconds=0)
    assert len(everything) == 13
    odd = next(letter for letter in everything if letter.body == "not json")
    assert (odd.event_id, odd.event_type) == (None, EVENT_TYPE)

    assert (await redrive(settings, CONSUMER, limit=4, wait_seconds=0)).moved == 4
    assert len(await list_dead_letters(settings, CONSUMER, wait_seconds=0)) == 9
    assert (await redrive(settings, CONSUMER, wait_seconds=0)).moved == 9
    assert await list_dead_letters(settings, CONSUMER, wait_seconds=0) == []


async def test_dlq_command_lists_shows_and_redrives(settings, bus, clean_aws):
    event_id, body = await _dead_letter(settings, bus)
    env = {"MVNO_AWS_ENDPOINT_URL": clean_aws, "PATH": ""}
    command = [sys.executable, "-m", "mvno.common.bus.dlq"]

    def run(*args: str) -> list[dict]:
        done = subprocess.run(
            [*command, *args, "--consumer", CONSUMER, "--wait", "0"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return [json.loads(line) for line in done.stdout.splitlines()]

    (listed,) = run("list")
    assert (listed["event_id"], listed["event_type"]) == (event_id, EVENT_TYPE)
    (shown,) = run("show", listed["message_id"])
    assert shown["body"] == body
    (result,) = run("redrive", "--message-id", listed["message_id"])
    assert result == {"moved": 1, "failed": 0, "duplicated": 0, "not_found": []}
    assert run("list") == []
