"""The consumer: SQS long polling, bounded concurrency and an inbox that makes effects exactly once.

Each message is handled in its own unit of work that first records (consumer, event id) in the
inbox; a redelivered event finds its row there and is acknowledged without running again. A failing
handler's message comes back after a backoff and, after the queue's maxReceiveCount, lands in the
DLQ, while the other messages keep flowing. Unknown event types are acknowledged and logged.
SIGTERM (``stop``) stops receiving, lets in-flight handlers finish within a grace period and makes
received-but-unstarted messages visible again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation

from mvno.common.bus import metrics
from mvno.common.bus.envelope import MalformedEventError, ReceivedEvent, decode
from mvno.common.db import UnitOfWorkT
from mvno.common.tracing import ORDER_ID, client_spans_when_sampled, order_context

Handler = Callable[[UnitOfWorkT, ReceivedEvent], Awaitable[None]]
"""An event handler: it runs in the unit of work (a service's kind of it) that records the event
in the inbox, and never commits unless it goes on in transactions of its own."""

_log = logging.getLogger(__name__)
_tracer = trace.get_tracer("mvno.bus.consumer")
SQS_BATCH = 10
_HEARTBEAT = "mvno.heartbeat"  # a held message's heartbeat, kept with it while it is buffered

# On the driver connection, in the handler's transaction: it runs once per event consumed.
_RECORD_IN_INBOX = (
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


@dataclass(frozen=True)
class ConsumerSettings:
    concurrency: int = 10
    prefetch: int = 10  # received messages waiting for a free worker
    wait_time_seconds: int = 20
    visibility_timeout: int = 30
    retry_initial: float = 1.0
    retry_max: float = 60.0
    shutdown_grace: float = 25.0
    dlq_poll_interval: float = 30.0
    # While other handlers are still running, wait up to this long for them so that one
    # DeleteMessageBatch acknowledges several messages; with nothing running, delete at once
    # unless ``delete_linger_when_idle``.
    delete_linger_seconds: float = 0.05
    # Wait the linger even with no handler running, for the receipts of messages not yet
    # received: for a queue whose messages arrive one at a time and are each handled before the
    # next comes (a provisioning worker's work items at a steady rate), where otherwise nearly
    # every message is deleted on its own. A handled message stays hidden meanwhile.
    delete_linger_when_idle: bool = False


class Consumer(Generic[UnitOfWorkT]):
    """Consumes one service's queue with its explicit ``event type -> handler`` dict."""

    def __init__(
        self,
        *,
        name: str,
        sqs: Any,
        queue_url: str,
        handlers: Mapping[str, Handler[UnitOfWorkT]],
        unit_of_work: Callable[[], UnitOfWorkT],
        settings: ConsumerSettings | None = None,
        dlq_url: str | None = None,
    ) -> None:
        self._name = name
        self._sqs = sqs
        self._queue_url = queue_url
        self._handlers = dict(handlers)
        self._unit_of_work = unit_of_work
        self._settings = settings or ConsumerSettings()
        self._dlq_url = dlq_url
        self._buffer: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._busy = 0
        self._slot_freed = asyncio.Event()
        self._to_delete: asyncio.Queue[str] = asyncio.Queue()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then shut down gracefully."""
        workers = [asyncio.create_task(self._work()) for _ in range(self._settings.concurrency)]
        deleter = asyncio.create_task(self._delete_acknowledged())
        dlq_watch = asyncio.create_task(self._watch_dlq(stop)) if self._dlq_url else None
        try:
            await self._receive_until(stop)
        finally:
            await self._release_unstarted()
            _, pending = await asyncio.wait(
                [asyncio.create_task(self._drained())], timeout=self._settings.shutdown_grace
            )
            for task in [*workers, *pending]:
                task.cancel()
            await asyncio.gather(*workers, *pending, return_exceptions=True)
            await self._to_delete.join()
            deleter.cancel()
            if dlq_watch:
                dlq_watch.cancel()
            await asyncio.gather(
                deleter, *([dlq_watch] if dlq_watch else []), return_exceptions=True
            )

    async def _receive_until(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                capacity = self._settings.concurrency + self._settings.prefetch
                free = capacity - self._busy - self._buffer.qsize()
                if free <= 0:
                    self._slot_freed.clear()
                    await asyncio.wait(
                        [asyncio.create_task(self._slot_freed.wait()), stopping],
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    continue
                receive = asyncio.create_task(self._receive(min(SQS_BATCH, free)))
                done, _ = await asyncio.wait(
                    [receive, stopping], return_when=asyncio.FIRST_COMPLETED
                )
                if receive not in done:
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        for message in await receive:
                            self._hold(message)
                    break
                try:
                    messages = receive.result()
                except Exception:
                    _log.exception("receiving from %s failed; retrying", self._queue_url)
                    await asyncio.wait([stopping], timeout=1.0)
                    continue
                for message in messages:
                    self._hold(message)
        finally:
            stopping.cancel()

    def _hold(self, message: dict[str, Any]) -> None:
        """Buffer a received message, kept hidden from other consumers from now on: one waiting
        for a free worker longer than the visibility timeout would otherwise be delivered again
        meanwhile, and a message received that way often enough lands in the DLQ unhandled."""
        message[_HEARTBEAT] = _Heartbeat(
            self._extend_visibility, message["ReceiptHandle"], self._settings.visibility_timeout
        )
        self._buffer.put_nowait(message)

    async def _receive(self, count: int) -> list[dict[str, Any]]:
        # No client span for the poll itself (a root span every poll, most of them empty): the
        # consumer span of each message it brings continues the producer's trace.
        with suppress_instrumentation():
            answer = await self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=self._settings.wait_time_seconds,
                VisibilityTimeout=self._settings.visibility_timeout,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        sent_at = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
        first_sent = min(sent_at, default=0)
        oldest = time.time() - first_sent / 1000 if first_sent else 0.0
        metrics.Gauges.oldest_received_age[self._name] = max(0.0, oldest)
        return messages

    async def _work(self) -> None:
        while True:
            message = await self._buffer.get()
            self._busy += 1
            try:
                await self._process(message)
            finally:
                self._busy -= 1
                self._buffer.task_done()
                self._slot_freed.set()

    async def _drained(self) -> None:
        await self._buffer.join()

    async def _process(self, message: dict[str, Any]) -> None:
        receipt = message["ReceiptHandle"]
        heartbeat: _Heartbeat = message.pop(_HEARTBEAT)  # beating since it was received
        started = time.monotonic()
        event_type = "unknown"
        outcome = "ignored"
        try:
            event = decode(message["Body"])
            event_type = event.type
            handler = self._handlers.get(event.type)
            if handler is None:
                _log.warning(
                    "%s ignores unknown event type %s (%s)", self._name, event.type, event.id
                )
            else:
                outcome = "handled" if await self._handle(event, handler) else "duplicate"
        except Exception as exc:
            outcome = "failed"
            metrics.handler_failures.add(1, {"consumer": self._name, "type": event_type})
            receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            level = logging.ERROR if isinstance(exc, MalformedEventError) else logging.WARNING
            _log.log(
                level,
                "%s failed on %s (receive %d): %s",
                self._name,
                event_type,
                receives,
                exc,
                exc_info=True,
            )
            await self._retry_later(receipt, receives)
            return
        finally:
            heartbeat.cancel()
            measured = {"consumer": self._name, "type": event_type}
            metrics.handler_duration.record(time.monotonic() - started, measured)
            metrics.messages_handled.add(1, {**measured, "outcome": outcome})
        await self._to_delete.put(receipt)

    async def _handle(self, event: ReceivedEvent, handler: Handler[UnitOfWorkT]) -> bool:
        """Run the handler once per event id; False for a duplicate. An event about an order
        names it in its data: the handler's spans carry its id."""
        order_id = event.data.get("order_id")
        attributes = {
            "messaging.system": "aws_sqs",
            "messaging.message.id": event.id,
            "cloudevents.event_type": event.type,
        }
        if isinstance(order_id, str) and order_id:
            attributes[ORDER_ID] = order_id
        else:
            order_id = None
        with _tracer.start_as_current_span(
            f"{event.type} process",
            context=event.trace_context(),
            kind=trace.SpanKind.CONSUMER,
            attributes=attributes,
        ):
            with client_spans_when_sampled(), order_context(order_id):
                handled = await self._run_handler(event, handler)
            if handled and event.time is not None:
                metrics.consumer_lag.record(
                    (datetime.now(UTC) - event.time).total_seconds(), {"consumer": self._name}
                )
        return handled

    async def _run_handler(self, event: ReceivedEvent, handler: Handler[UnitOfWorkT]) -> bool:
        """The handler in its unit of work, once per event id; False for a duplicate. Client
        spans (statements, calls) only when the event's trace is recorded."""
        async with self._unit_of_work() as uow:
            first_time = await uow.connection.fetchval(
                _RECORD_IN_INBOX, self._name, event.id, event.type
            )
            if first_time is None:
                _log.info(
                    "%s already handled %s; acknowledging the duplicate", self._name, event.id
                )
                return False
            await handler(uow, event)
            if not uow.committed:  # a long-running handler may have committed its first part
                await uow.commit()
        return True

    async def _extend_visibility(self, receipt: str) -> None:
        try:
            await self._sqs.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=self._settings.visibility_timeout,
            )
        except Exception as exc:
            _log.warning("could not extend the visibility of a message: %s", exc)

    async def _retry_later(self, receipt: str, receives: int) -> None:
        delay = min(self._settings.retry_max, self._settings.retry_initial * 2 ** (receives - 1))
        with contextlib.suppress(Exception):
            await self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=receipt, VisibilityTimeout=int(delay)
            )

    async def _delete_acknowledged(self) -> None:
        while True:
            receipts = [await self._to_delete.get()]
            deadline = asyncio.get_running_loop().time() + self._settings.delete_linger_seconds
            while len(receipts) < SQS_BATCH:
                if not self._to_delete.empty():
                    receipts.append(self._to_delete.get_nowait())
                    continue
                remaining = deadline - asyncio.get_running_loop().time()
                idle = self._busy == 0 and not self._settings.delete_linger_when_idle
                if idle or remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    receipts.append(await asyncio.wait_for(self._to_delete.get(), remaining))
            try:
                with suppress_instrumentation():  # a root span per batch, in no trace
                    answer = await self._sqs.delete_message_batch(
                        QueueUrl=self._queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts)
                        ],
                    )
                if answer.get("Failed"):
                    _log.warning(
                        "%d deletes failed; those events will be redelivered and deduplicated",
                        len(answer["Failed"]),
                    )
            except Exception as exc:
                _log.warning(
                    "deleting handled messages failed (%s); the inbox absorbs redeliveries", exc
                )
            finally:
                for _ in receipts:
                    self._to_delete.task_done()

    async def _release_unstarted(self) -> None:
        """Make received messages that no worker started visible again at once."""
        released: list[dict[str, Any]] = []
        while not self._buffer.empty():
            message = self._buffer.get_nowait()
            if (heartbeat := message.pop(_HEARTBEAT, None)) is not None:
                heartbeat.cancel()
            released.append(message)
            self._buffer.task_done()
        for start in range(0, len(released), SQS_BATCH):
            chunk = released[start : start + SQS_BATCH]
            with contextlib.suppress(Exception):
                await self._sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(chunk)
                    ],
                )
        if released:
            _log.info("%s released %d unstarted messages", self._name, len(released))

    async def _watch_dlq(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                answer = await self._sqs.get_queue_attributes(
                    QueueUrl=self._dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
                )
                metrics.Gauges.dlq_depth[self._name] = int(
                    answer["Attributes"]["ApproximateNumberOfMessages"]
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.dlq_poll_interval)


class _Heartbeat:
    """Extends a message's visibility every half visibility timeout while its handler runs.

    A timer rather than a task per message: almost every handler finishes long before the first
    extension is due, and creating and cancelling a task for each message cost more CPU than a
    timer handle, on the path every event takes.
    """

    def __init__(
        self,
        extend: Callable[[str], Coroutine[Any, Any, None]],
        receipt: str,
        visibility_timeout: int,
    ) -> None:
        self._extend = extend
        self._receipt = receipt
        self._interval = visibility_timeout / 2
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(self._interval, self._beat)
        self._extending: asyncio.Task[None] | None = None

    def _beat(self) -> None:
        if self._extending is None or self._extending.done():  # else the last call still runs
            self._extending = self._loop.create_task(self._extend(self._receipt))
        self._timer = self._loop.call_later(self._interval, self._beat)

    def cancel(self) -> None:
        self._timer.cancel()
        if self._extending is not None:
            self._extending.cancel()
