"""Dead-letter queue inspection and redrive, for operators.

Redrive receives from the DLQ, sends each message back to its source queue (body, message
attributes and trace header unchanged) and deletes it from the DLQ only once the send succeeded,
so a failure leaves the message where it was. This works on every AWS-compatible endpoint, unlike
SQS's ``StartMessageMoveTask`` (moto lacks it). The message gets a new SQS message id; the
CloudEvent id in the body is unchanged, so the consumer's inbox still recognises a duplicate.

Listing holds the messages it reads invisible only while it pages through the DLQ and then makes
them visible again; each look counts as a receive in ``receive_count``.

CLI (JSON lines on stdout, settings from ``MVNO_AWS_*``)::

    python -m mvno.common.bus.dlq list --consumer orders [--limit 100] [--prefix mvno]
    python -m mvno.common.bus.dlq show --consumer orders MESSAGE_ID
    python -m mvno.common.bus.dlq redrive --consumer orders [--message-id ID ...] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mvno.common.aws import aws_client
from mvno.common.bus.envelope import TYPE_ATTRIBUTE
from mvno.common.bus.provision import BusNotProvisionedError
from mvno.common.bus.topology import Topology, platform_topology
from mvno.common.settings import ServiceSettings

_log = logging.getLogger(__name__)

# Long enough to page through a DLQ without seeing a message twice, short enough that a crashed
# listing does not hide messages from another operator for long.
HOLD_SECONDS = 60
DEFAULT_WAIT_SECONDS = 1
SQS_BATCH = 10


@dataclass(frozen=True)
class DeadLetter:
    """A message parked in a dead-letter queue."""

    message_id: str
    event_id: str | None
    event_type: str | None
    receive_count: int
    first_received_at: datetime | None
    sent_at: datetime | None
    body: str
    message_attributes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The fields ``list`` prints: no body, which may be large."""
        return {
            "message_id": self.message_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "receive_count": self.receive_count,
            "first_received_at": _iso(self.first_received_at),
            "sent_at": _iso(self.sent_at),
        }

    def to_json(self) -> dict[str, Any]:
        """Everything, for ``show``; attributes flattened to their values."""
        attributes = {
            name: value.get("StringValue", value.get("BinaryValue"))
            for name, value in self.message_attributes.items()
        }
        return {**self.summary(), "message_attributes": attributes, "body": self.body}


@dataclass(frozen=True)
class RedriveResult:
    """What a redrive did.

    ``duplicated`` counts messages sent back whose DLQ copy could not be deleted: they will be
    seen again, which the consumer's inbox makes harmless. ``not_found`` lists requested message
    ids that were not in the DLQ.
    """

    moved: int
    failed: int
    duplicated: int = 0
    not_found: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "moved": self.moved,
            "failed": self.failed,
            "duplicated": self.duplicated,
            "not_found": list(self.not_found),
        }


async def list_dead_letters(
    settings: ServiceSettings,
    consumer: str,
    *,
    limit: int = 100,
    topology: Topology | None = None,
    wait_seconds: int = DEFAULT_WAIT_SECONDS,
) -> list[DeadLetter]:
    """Up to ``limit`` messages in ``consumer``'s DLQ, left in place.

    ``topology`` defaults to the platform's under ``settings.bus_prefix``. ``wait_seconds`` is
    the long-poll wait of each receive; the last, empty one waits that long.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    letters: dict[str, DeadLetter] = {}
    receipts: list[str] = []
    async with aws_client(settings, "sqs") as sqs:
        _source_url, dlq_url = await _queue_urls(
            sqs, consumer, topology or platform_topology(settings.bus_prefix)
        )
        try:
            while len(letters) < limit:
                batch = await _receive(
                    sqs, dlq_url, min(SQS_BATCH, limit - len(letters)), wait_seconds
                )
                receipts.extend(message["ReceiptHandle"] for message in batch)
                new = [message for message in batch if message["MessageId"] not in letters]
                if not new:
                    break
                for message in new:
                    letters[message["MessageId"]] = _dead_letter(message)
        finally:
            await _release(sqs, dlq_url, receipts)
    return list(letters.values())


async def show(
    settings: ServiceSettings,
    consumer: str,
    message_id: str,
    *,
    topology: Topology | None = None,
    wait_seconds: int = DEFAULT_WAIT_SECONDS,
) -> DeadLetter | None:
    """The message ``message_id`` in ``consumer``'s DLQ, or None when it is not there."""
    seen: set[str] = set()
    receipts: list[str] = []
    async with aws_client(settings, "sqs") as sqs:
        _source_url, dlq_url = await _queue_urls(
            sqs, consumer, topology or platform_topology(settings.bus_prefix)
        )
        try:
            while True:
                batch = await _receive(sqs, dlq_url, SQS_BATCH, wait_seconds)
                receipts.extend(message["ReceiptHandle"] for message in batch)
                for message in batch:
                    if message["MessageId"] == message_id:
                        return _dead_letter(message)
                new = {message["MessageId"] for message in batch} - seen
                if not new:
                    return None
                seen |= new
        finally:
            await _release(sqs, dlq_url, receipts)


async def redrive(
    settings: ServiceSettings,
    consumer: str,
    *,
    message_ids: Collection[str] | None = None,
    limit: int | None = None,
    topology: Topology | None = None,
    wait_seconds: int = DEFAULT_WAIT_SECONDS,
) -> RedriveResult:
    """Move messages from ``consumer``'s DLQ back to its queue.

    ``message_ids`` picks the messages (default: all); ``limit`` caps how many are moved. A
    message is deleted from the DLQ only after the send to the source queue succeeded.
    """
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    wanted = set(message_ids) if message_ids is not None else None
    moved = failed = duplicated = 0
    seen: set[str] = set()
    kept: list[str] = []  # receipts of messages not picked, made visible again at the end
    async with aws_client(settings, "sqs") as sqs:
        source_url, dlq_url = await _queue_urls(
            sqs, consumer, topology or platform_topology(settings.bus_prefix)
        )
        try:
            while limit is None or moved + failed < limit:
                if wanted is not None and wanted <= seen:
                    break
                room = SQS_BATCH if limit is None else min(SQS_BATCH, limit - moved - failed)
                batch = await _receive(sqs, dlq_url, room, wait_seconds)
                new = [message for message in batch if message["MessageId"] not in seen]
                kept.extend(m["ReceiptHandle"] for m in batch if m["MessageId"] in seen)
                if not new:
                    break
                seen.update(message["MessageId"] for message in new)
                picked = [m for m in new if wanted is None or m["MessageId"] in wanted]
                if wanted is not None:
                    kept.extend(m["ReceiptHandle"] for m in new if m["MessageId"] not in wanted)
                if not picked:
                    continue
                sent, unsent = await _send_back(sqs, source_url, picked)
                moved += len(sent)
                failed += len(unsent)
                kept.extend(message["ReceiptHandle"] for message in unsent)
                duplicated += await _delete(sqs, dlq_url, sent)
        finally:
            await _release(sqs, dlq_url, kept)
    not_found = tuple(sorted(wanted - seen)) if wanted is not None else ()
    return RedriveResult(moved, failed, duplicated, not_found)


async def _queue_urls(sqs: Any, consumer: str, topology: Topology) -> tuple[str, str]:
    queue = topology.queue(consumer)
    urls: list[str] = []
    missing: list[str] = []
    for name in (queue.name, queue.dlq_name):
        try:
            urls.append((await sqs.get_queue_url(QueueName=name))["QueueUrl"])
        except sqs.exceptions.QueueDoesNotExist:
            missing.append(f"queue {name}")
    if missing:
        raise BusNotProvisionedError(missing)
    return urls[0], urls[1]


async def _receive(sqs: Any, url: str, count: int, wait_seconds: int) -> list[dict[str, Any]]:
    response = await sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=count,
        WaitTimeSeconds=wait_seconds,
        VisibilityTimeout=HOLD_SECONDS,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


async def _send_back(
    sqs: Any, url: str, messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entries = [_send_entry(str(index), message) for index, message in enumerate(messages)]
    try:
        response = await sqs.send_message_batch(QueueUrl=url, Entries=entries)
    except Exception:
        _log.exception("redrive: sending back to %s failed", url)
        return [], messages
    for failure in response.get("Failed", []):
        _log.warning(
            "redrive: message %s not sent back: %s %s",
            messages[int(failure["Id"])]["MessageId"],
            failure.get("Code"),
            failure.get("Message"),
        )
    ok = {int(entry["Id"]) for entry in response.get("Successful", [])}
    return (
        [message for index, message in enumerate(messages) if index in ok],
        [message for index, message in enumerate(messages) if index not in ok],
    )


def _send_entry(entry_id: str, message: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = {
        name: {
            key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    system = message.get("Attributes", {})
    if "AWSTraceHeader" in system:
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}
        }
    # Only a FIFO source has these, and there they are required.
    if "MessageGroupId" in system:
        entry["MessageGroupId"] = system["MessageGroupId"]
    if "MessageDeduplicationId" in system:
        entry["MessageDeduplicationId"] = system["MessageDeduplicationId"]
    return entry


async def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> int:
    """Delete ``messages``; the number that could not be deleted."""
    if not messages:
        return 0
    entries = [
        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
        for index, message in enumerate(messages)
    ]
    try:
        response = await sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    except Exception:
        _log.exception("redrive: deleting from %s failed; the messages will be seen again", url)
        return len(messages)
    failures = response.get("Failed", [])
    for failure in failures:
        _log.warning(
            "redrive: message %s sent back but still in the DLQ: %s",
            messages[int(failure["Id"])]["MessageId"],
            failure.get("Message"),
        )
    return len(failures)


async def _release(sqs: Any, url: str, receipts: list[str]) -> None:
    for start in range(0, len(receipts), SQS_BATCH):
        chunk = receipts[start : start + SQS_BATCH]
        entries = [
            {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
            for index, receipt in enumerate(chunk)
        ]
        try:
            await sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception:
            # Harmless: the hold runs out after HOLD_SECONDS anyway.
            _log.warning("could not make %d DLQ messages visible again", len(chunk), exc_info=True)


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    system = message.get("Attributes", {})
    attributes = message.get("MessageAttributes", {})
    event_id, event_type = _event_identity(message["Body"])
    if event_type is None and TYPE_ATTRIBUTE in attributes:
        event_type = attributes[TYPE_ATTRIBUTE].get("StringValue")
    return DeadLetter(
        message_id=message["MessageId"],
        event_id=event_id,
        event_type=event_type,
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        first_received_at=_from_millis(system.get("ApproximateFirstReceiveTimestamp")),
        sent_at=_from_millis(system.get("SentTimestamp")),
        body=message["Body"],
        message_attributes=attributes,
    )


def _event_identity(body: str) -> tuple[str | None, str | None]:
    # A poison message may be anything, so a body that is not a CloudEvent is shown, not refused.
    try:
        event = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(event, dict):
        return None, None
    event_id, event_type = event.get("id"), event.get("type")
    return (
        event_id if isinstance(event_id, str) else None,
        event_type if isinstance(event_type, str) else None,
    )


def _from_millis(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def _main(argv: Sequence[str] | None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--consumer", required=True, help="orders, billing-sync, portal-api")
    common.add_argument("--prefix", help="resource name prefix (default: MVNO_BUS_PREFIX)")
    common.add_argument(
        "--wait", type=int, default=DEFAULT_WAIT_SECONDS, help="long-poll seconds per receive"
    )
    parser = argparse.ArgumentParser(prog="python -m mvno.common.bus.dlq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", parents=[common], help="list dead letters")
    listing.add_argument("--limit", type=int, default=100)
    showing = commands.add_parser("show", parents=[common], help="show one dead letter")
    showing.add_argument("message_id")
    moving = commands.add_parser("redrive", parents=[common], help="move back to the queue")
    moving.add_argument("--message-id", action="append", dest="message_ids")
    moving.add_argument("--limit", type=int)
    args = parser.parse_args(argv)

    settings = ServiceSettings()
    topology = platform_topology(args.prefix or settings.bus_prefix)
    if args.command == "list":
        letters = await list_dead_letters(
            settings, args.consumer, limit=args.limit, topology=topology, wait_seconds=args.wait
        )
        for letter in letters:
            print(json.dumps(letter.summary()))
        return 0
    if args.command == "show":
        found = await show(
            settings, args.consumer, args.message_id, topology=topology, wait_seconds=args.wait
        )
        if found is None:
            print(json.dumps({"error": "not in the DLQ", "message_id": args.message_id}))
            return 1
        print(json.dumps(found.to_json()))
        return 0
    result = await redrive(
        settings,
        args.consumer,
        message_ids=args.message_ids,
        limit=args.limit,
        topology=topology,
        wait_seconds=args.wait,
    )
    print(json.dumps(result.to_json()))
    return 0 if result.failed == 0 and not result.not_found else 1


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: ``list``, ``show`` or ``redrive`` a consumer's dead letters."""
    return asyncio.run(_main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
