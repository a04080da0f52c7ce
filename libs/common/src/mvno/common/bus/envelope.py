"""The CloudEvents 1.0 envelope (JSON structured mode) every event on the bus travels in.

Trace context rides in the CloudEvents distributed-tracing extension (``traceparent``), captured
when the event is created, so the consumer's span continues the producer's trace even though the
outbox relay publishes it later from another task.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import BaseModel
from pydantic_core import to_json

from mvno.common.events.base import EventData

MAX_BODY_BYTES = 256 * 1024
MAX_MESSAGE_ATTRIBUTES = 10
TYPE_ATTRIBUTE = "type"

_FORMAT = JSONFormat()
_TRACE = TraceContextTextMapPropagator()


class EventTooLargeError(ValueError):
    """An event that SNS/SQS would refuse: body over 256 KiB or more than 10 attributes."""


class MalformedEventError(ValueError):
    """A message body that is not a CloudEvent in JSON structured mode."""


@dataclass(frozen=True)
class OutgoingEvent:
    """An encoded event ready for the outbox: its id, type, body and SNS message attributes."""

    id: str
    type: str
    body: str
    attributes: dict[str, str]


def event_source(service_name: str) -> str:
    """The CloudEvents ``source`` of a service's events, e.g. ``urn:mvno:orders``."""
    return f"urn:mvno:{service_name}"


def event_type_of(data: BaseModel) -> str:
    event_type = getattr(type(data), "event_type", None)
    if not isinstance(event_type, str):
        raise TypeError(f"{type(data).__name__} declares no event_type")
    return event_type


def new_event(
    data: BaseModel,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    extra_attributes: dict[str, str] | None = None,
) -> OutgoingEvent:
    """Wrap ``data`` (an event contract) in a CloudEvent, with the current trace context.

    Without ``subject``, a contract's own (its ``subject_field``, the aggregate's id) is used.
    Raises :class:`EventTooLargeError` naming the limit when SNS/SQS would refuse it.
    """
    event_type = event_type_of(data)
    if subject is None and isinstance(data, EventData):
        subject = data.event_subject()
    event_id = event_id or str(uuid.uuid4())
    envelope: dict[str, Any] = {
        "id": event_id,
        "source": source,
        "type": event_type,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": _rfc3339(datetime.now(UTC)),
    }
    if subject:
        envelope["subject"] = subject
    _TRACE.inject(envelope)  # traceparent (and tracestate) per the CloudEvents tracing extension
    envelope["data"] = data
    # JSON structured mode is the attributes and ``data`` as one JSON object: written in one
    # pass by pydantic's serializer, as the SDK's writer would (members in the same order, the
    # time in its RFC 3339 form), at a fraction of its cost, as every event written pays it;
    # every event read goes through the SDK (:func:`decode`), and a test reads these back with it.
    body = to_json(envelope, by_alias=False).decode()
    message_attributes = {TYPE_ATTRIBUTE: event_type, **(extra_attributes or {})}
    check_limits(body, message_attributes)
    return OutgoingEvent(event_id, event_type, body, message_attributes)


def _rfc3339(instant: datetime) -> str:
    """``instant`` as the CloudEvents ``time`` attribute: ISO 8601, UTC written ``Z``."""
    text = instant.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def check_limits(body: str, message_attributes: dict[str, str]) -> None:
    """Refuse what SNS/SQS would refuse, at publish time and with the limit named."""
    # SNS counts the body and every attribute's name, type and value against the 256 KiB.
    size = len(body.encode()) + sum(
        len(name.encode()) + len(value.encode()) + len("String")
        for name, value in message_attributes.items()
    )
    if size > MAX_BODY_BYTES:
        raise EventTooLargeError(
            f"event is {size} bytes; the bus limit is 256 KiB ({MAX_BODY_BYTES} bytes)"
        )
    # The botocore instrumentation adds X-Amzn-Trace-Id as one more attribute when it publishes.
    if len(message_attributes) + 1 > MAX_MESSAGE_ATTRIBUTES:
        raise EventTooLargeError(
            f"event has {len(message_attributes)} message attributes; the limit is "
            f"{MAX_MESSAGE_ATTRIBUTES}, one of which is kept for the X-Ray trace header"
        )


@dataclass(frozen=True)
class ReceivedEvent:
    """A CloudEvent read from the bus."""

    id: str
    type: str
    source: str
    subject: str | None
    time: datetime | None
    data: dict[str, Any]
    trace_carrier: dict[str, str]

    def trace_context(self) -> Context:
        """The producer's trace context, to parent the consumer's span."""
        return _TRACE.extract(self.trace_carrier)


def decode(body: str | bytes) -> ReceivedEvent:
    """Read a CloudEvent in JSON structured mode; raise :class:`MalformedEventError` otherwise."""
    try:
        event = _FORMAT.read(None, body)
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        raise MalformedEventError(f"not a CloudEvent: {exc}") from exc
    except Exception as exc:  # the SDK raises its own validation errors for missing attributes
        raise MalformedEventError(f"not a CloudEvent: {exc}") from exc
    data = event.get_data()
    if not isinstance(data, dict):
        raise MalformedEventError("the event's data is not a JSON object")
    carrier = {
        key: str(value)
        for key in ("traceparent", "tracestate")
        if (value := _extension(event, key)) is not None
    }
    return ReceivedEvent(
        id=event.get_id(),
        type=event.get_type(),
        source=event.get_source(),
        subject=event.get_subject(),
        time=event.get_time(),
        data=data,
        trace_carrier=carrier,
    )


def _extension(event: Any, name: str) -> Any:
    try:
        return event.get_extension(name)
    except (KeyError, AttributeError):
        return None
