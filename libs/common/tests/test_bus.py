"""The bus end to end on real PostgreSQL and the real SNS/SQS protocol (moto's server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from datetime import datetime
from functools import partial

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from opentelemetry import trace
from sqlalchemy import text

from mvno.common.bus.consumer import Consumer, ConsumerSettings
from mvno.common.bus.envelope import EventTooLargeError, check_limits, decode, new_event
from mvno.common.bus.relay import OutboxRelay, RelaySettings
from mvno.common.tracing import configure_tracing
from mvno.devstack.testing import metric_points

from .conftest import ThingCreated, ThingRenamed, record_effect

FAST = ConsumerSettings(wait_time_seconds=1, retry_initial=0, shutdown_grace=5)


@contextlib.asynccontextmanager
async def running(*runners):
    """Run relays/consumers as tasks until the block ends, then stop them gracefully."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(runner.run(stop)) for runner in runners]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def relay_for(world, **overrides) -> OutboxRelay:
    return OutboxRelay(
        service="test",
        engine=world.engine,
        database_url=world.settings.database_url,
        sns=world.sns,
        topic_arn=world.topic_arn,
        settings=RelaySettings(**{"poll_interval": 5.0, **overrides}),
    )


def consumer_for(world, name: str, handlers=None, settings: ConsumerSettings = FAST) -> Consumer:
    effect = partial(record_effect, consumer=name)
    return Consumer(
        name=name,
        sqs=world.sqs,
        queue_url=world.queues[name].url,
        handlers=handlers
        if handlers is not None
        else {ThingCreated.event_type: effect, ThingRenamed.event_type: effect},
        unit_of_work=world.unit_of_work,
        settings=settings,
        dlq_url=world.queues[name].dlq_url,
    )


async def commit_things(world, count: int, event=ThingCreated) -> list[str]:
    ids = []
    for n in range(count):
        async with world.unit_of_work() as uow:
            await uow.session.execute(
                text("INSERT INTO thing (id) VALUES (:id)"), {"id": f"{event.__name__}-{n}"}
            )
            ids.append(
                uow.publish(event(thing_id=f"{event.__name__}-{n}"), subject=f"thing-{n}").id
            )
            await uow.commit()
    return ids


async def test_committed_events_reach_every_subscribed_consumer_once(bus_world):
    created = await commit_things(bus_world, 15)
    renamed = await commit_things(bus_world, 5, ThingRenamed)
    async with running(
        relay_for(bus_world), consumer_for(bus_world, "alpha"), consumer_for(bus_world, "beta")
    ):
        await bus_world.wait_for(
            lambda: _has(bus_world, {"alpha": 20, "beta": 15}), what="every effect"
        )
    assert sorted(await bus_world.effects("alpha")) == sorted(created + renamed)
    assert sorted(await bus_world.effects("beta")) == sorted(
        created
    )  # beta's filter takes only created


async def _has(world, expected: dict[str, int]) -> bool:
    return all([len(await world.effects(name)) >= n for name, n in expected.items()])


async def test_relay_wakes_on_commit_without_waiting_for_the_poll(bus_world):
    async with running(relay_for(bus_world, poll_interval=60.0), consumer_for(bus_world, "beta")):
        await asyncio.sleep(0.5)  # the relay is now idle, listening
        [event_id] = await commit_things(bus_world, 1)
        started = asyncio.get_running_loop().time()
        await bus_world.wait_for(lambda: _has(bus_world, {"beta": 1}), limit=10, what="the event")
        assert asyncio.get_running_loop().time() - started < 5  # far below the 60 s poll
    assert await bus_world.effects("beta") == [event_id]


async def test_relay_of_an_outbox_that_does_not_notify_looks_for_rows_every_window(bus_world):
    async with bus_world.engine.begin() as connection:  # as a service's migration may drop it
        await connection.execute(text("DROP TRIGGER outbox_notify ON outbox"))
    relay = relay_for(bus_world, poll_interval=60.0, coalesce_seconds=0.05)
    async with running(relay, consumer_for(bus_world, "alpha")):
        await bus_world.wait_for(lambda: asyncio.sleep(0, relay.listening), what="the lock")
        for expected, event in ((1, ThingCreated), (2, ThingRenamed)):  # and again once idle
            await asyncio.sleep(0.5)
            await commit_things(bus_world, 1, event)
            started = asyncio.get_running_loop().time()
            await bus_world.wait_for(
                lambda expected=expected: _has(bus_world, {"alpha": expected}),
                limit=10,
                what="the event",
            )
            assert asyncio.get_running_loop().time() - started < 5  # far below the 60 s poll
    assert len(await bus_world.effects("alpha")) == 2


async def test_relay_connects_again_when_the_database_drops_its_connection(bus_world):
    relay = relay_for(bus_world, poll_interval=0.2)
    async with running(relay, consumer_for(bus_world, "beta")):
        first = await commit_things(bus_world, 1)
        await bus_world.wait_for(lambda: _has(bus_world, {"beta": 1}), limit=10, what="the event")
        held = relay._connection
        assert held is not None, "a running relay holds its cycles' connection"
        async with bus_world.engine.connect() as connection:  # e.g. a failover, an idle timeout
            await connection.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": held.get_server_pid()}
            )
        async with bus_world.unit_of_work() as uow:
            second = [uow.publish(ThingCreated(thing_id="after-the-drop")).id]
            await uow.commit()
        await bus_world.wait_for(lambda: _has(bus_world, {"beta": 2}), limit=20, what="the next")
        assert relay._connection is not held
    assert sorted(await bus_world.effects("beta")) == sorted(first + second)


async def test_one_relay_listens_and_another_takes_over_when_it_stops(bus_world):
    first, second = (relay_for(bus_world, poll_interval=0.5) for _ in range(2))
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(first.run(stop_first)),
        asyncio.create_task(second.run(stop_second)),
    ]
    try:
        await bus_world.wait_for(
            lambda: asyncio.sleep(0, first.listening or second.listening), what="a listener"
        )
        await asyncio.sleep(1.5)  # three polls: the other had its chances to take the lock
        assert [first.listening, second.listening].count(True) == 1
        leader, leader_stop, other = (
            (first, stop_first, second) if first.listening else (second, stop_second, first)
        )
        leader_stop.set()
        await bus_world.wait_for(
            lambda: asyncio.sleep(0, other.listening), limit=10, what="the other to take over"
        )
        assert not leader.listening
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.gather(*tasks)
    async with running(relay_for(bus_world, poll_interval=60.0), consumer_for(bus_world, "beta")):
        await asyncio.sleep(0.5)
        await commit_things(bus_world, 1)  # the lock was let go: a new relay listens at once
        await bus_world.wait_for(lambda: _has(bus_world, {"beta": 1}), limit=10, what="the event")


async def test_duplicated_and_reordered_deliveries_apply_each_effect_once(bus_world):
    bodies = [
        new_event(ThingCreated(thing_id=f"t{n}"), source="urn:mvno:test").body for n in range(20)
    ]
    deliveries = bodies * 2
    random.Random(7).shuffle(deliveries)
    for start in range(0, len(deliveries), 10):
        await bus_world.sqs.send_message_batch(
            QueueUrl=bus_world.queues["alpha"].url,
            Entries=[
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(deliveries[start : start + 10])
            ],
        )
    async with running(consumer_for(bus_world, "alpha")):
        await bus_world.wait_for(
            lambda: bus_world.queue_is_empty("alpha"), what="the queue to drain"
        )
    effects = await bus_world.effects("alpha")
    assert sorted(effects) == sorted(decode(body).id for body in bodies)


async def test_rolled_back_transaction_publishes_nothing(bus_world):
    async with bus_world.unit_of_work() as uow:
        await uow.session.execute(text("INSERT INTO thing (id) VALUES ('never')"))
        uow.publish(ThingCreated(thing_id="never"))
        # no commit: the block ends and everything rolls back
    async with bus_world.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 0
    relay = relay_for(bus_world)
    assert await relay.publish_due() == 0
    answer = await bus_world.sqs.receive_message(
        QueueUrl=bus_world.queues["alpha"].url, WaitTimeSeconds=1
    )
    assert answer.get("Messages", []) == []


async def test_publish_failures_are_retried_with_attempts_and_last_error_recorded(bus_world):
    await commit_things(bus_world, 1)
    broken = relay_for(bus_world, retry_initial=0.05)
    broken._topic_arn = bus_world.topic_arn + "-missing"
    assert await broken.publish_due() == 0
    async with bus_world.engine.connect() as connection:
        row = (
            await connection.execute(text("SELECT attempts, last_error, published_at FROM outbox"))
        ).one()
    assert row.attempts == 1
    assert row.last_error
    assert row.published_at is None
    await asyncio.sleep(0.1)  # past the backoff
    assert await relay_for(bus_world).publish_due() == 1
    async with bus_world.engine.connect() as connection:
        row = (
            await connection.execute(text("SELECT attempts, last_error, published_at FROM outbox"))
        ).one()
    assert (row.attempts, row.last_error) == (2, None)
    assert row.published_at is not None


async def test_published_rows_are_pruned_after_the_retention(bus_world):
    await commit_things(bus_world, 3)
    relay = relay_for(bus_world)
    assert await relay.publish_due() == 3
    async with bus_world.engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE outbox SET published_at = now() - interval '8 days' WHERE seq = (SELECT min(seq) FROM outbox)"
            )
        )
    assert await relay.housekeeping() == 1
    async with bus_world.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM outbox"))).scalar_one() == 2


async def test_several_relays_publish_each_row_once(bus_world):
    ids = await commit_things(bus_world, 60)
    relays = [relay_for(bus_world, batch_size=7) for _ in range(3)]
    published = 0
    while True:
        counts = await asyncio.gather(*(relay.publish_due() for relay in relays))
        if not any(counts):
            break
        published += sum(counts)
    assert published == 60
    received = []
    while True:
        answer = await bus_world.sqs.receive_message(
            QueueUrl=bus_world.queues["alpha"].url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        if not answer.get("Messages"):
            break
        received += [decode(m["Body"]).id for m in answer["Messages"]]
    assert sorted(received) == sorted(ids)


async def test_poison_message_goes_to_the_dlq_after_max_receives_while_others_flow(bus_world):
    calls: dict[str, int] = {}

    async def picky(uow, event):
        calls[event.data["thing_id"]] = calls.get(event.data["thing_id"], 0) + 1
        if event.data["thing_id"] == "poison":
            raise RuntimeError("cannot handle this one")
        await record_effect(uow, event, "alpha")

    good = [
        new_event(ThingCreated(thing_id=f"good-{n}"), source="urn:mvno:test") for n in range(10)
    ]
    poison = new_event(ThingCreated(thing_id="poison"), source="urn:mvno:test")
    await bus_world.sqs.send_message(
        QueueUrl=bus_world.queues["alpha"].url, MessageBody=poison.body
    )
    for event in good:
        await bus_world.sqs.send_message(
            QueueUrl=bus_world.queues["alpha"].url, MessageBody=event.body
        )
    consumer = consumer_for(bus_world, "alpha", {ThingCreated.event_type: picky})
    async with running(consumer):
        await bus_world.wait_for(
            lambda: _dlq_depth(bus_world, "alpha", 1), what="the poison message in the DLQ"
        )
        await bus_world.wait_for(lambda: _has(bus_world, {"alpha": 10}), what="the good messages")
    assert calls["poison"] == 5  # exactly maxReceiveCount receives
    assert all(calls[f"good-{n}"] == 1 for n in range(10))
    dead = await bus_world.sqs.receive_message(
        QueueUrl=bus_world.queues["alpha"].dlq_url, WaitTimeSeconds=1
    )
    assert decode(dead["Messages"][0]["Body"]).id == poison.id


async def _dlq_depth(world, name: str, expected: int) -> bool:
    answer = await world.sqs.get_queue_attributes(
        QueueUrl=world.queues[name].dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(answer["Attributes"]["ApproximateNumberOfMessages"]) >= expected


async def test_handler_running_three_visibility_timeouts_is_processed_once(bus_world):
    calls = []

    async def slow(uow, event):
        calls.append(event.id)
        await asyncio.sleep(6)
        await record_effect(uow, event, "alpha")

    event = new_event(ThingCreated(thing_id="slow"), source="urn:mvno:test")
    await bus_world.sqs.send_message(QueueUrl=bus_world.queues["alpha"].url, MessageBody=event.body)
    settings = ConsumerSettings(
        wait_time_seconds=1, visibility_timeout=2, concurrency=2, prefetch=0
    )
    async with running(consumer_for(bus_world, "alpha", {ThingCreated.event_type: slow}, settings)):
        await bus_world.wait_for(
            lambda: _has(bus_world, {"alpha": 1}), limit=20, what="the slow handler"
        )
        await asyncio.sleep(3)  # longer than the visibility timeout: a redelivery would show now
    assert calls == [event.id]
    assert await bus_world.queue_is_empty("alpha")


async def test_messages_waiting_for_a_free_worker_stay_hidden_past_the_visibility_timeout(
    bus_world,
):
    """One worker, a slow handler, and more messages received than it can start at once: those
    waiting in the buffer must not reappear to other consumers (each reappearance counts
    towards the DLQ's maxReceiveCount)."""
    calls = []

    async def slow(uow, event):
        calls.append(event.id)
        await asyncio.sleep(2.5)
        await record_effect(uow, event, "alpha")

    events = [new_event(ThingCreated(thing_id=f"w{n}"), source="urn:mvno:test") for n in range(3)]
    await bus_world.sqs.send_message_batch(
        QueueUrl=bus_world.queues["alpha"].url,
        Entries=[{"Id": str(n), "MessageBody": e.body} for n, e in enumerate(events)],
    )
    settings = ConsumerSettings(
        wait_time_seconds=1, visibility_timeout=2, concurrency=1, prefetch=2
    )
    handlers = {ThingCreated.event_type: slow}
    # It holds all three (one started, two waiting), so it receives no more meanwhile.
    async with running(consumer_for(bus_world, "alpha", handlers, settings)):
        await bus_world.wait_for(
            lambda: _has(bus_world, {"alpha": 1}), limit=20, what="the first message"
        )
        # Another consumer of the queue now: it sees only what the first one let go.
        other = await bus_world.sqs.receive_message(
            QueueUrl=bus_world.queues["alpha"].url, MaxNumberOfMessages=10, WaitTimeSeconds=3
        )
        assert other.get("Messages", []) == []
        await bus_world.wait_for(
            lambda: _has(bus_world, {"alpha": 3}), limit=30, what="all three messages"
        )
    assert sorted(calls) == sorted(e.id for e in events)
    assert await bus_world.queue_is_empty("alpha")


class CountingSqs:
    """The real SQS client, with its DeleteMessageBatch calls counted."""

    def __init__(self, sqs) -> None:
        self._sqs = sqs
        self.delete_batches: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self._sqs, name)

    async def delete_message_batch(self, **kwargs):
        self.delete_batches.append(len(kwargs["Entries"]))
        return await self._sqs.delete_message_batch(**kwargs)


@pytest.mark.parametrize(
    ("when_idle", "expected"), [(True, [3]), (False, [1, 1, 1])], ids=["lingers", "at-once"]
)
async def test_deletes_of_messages_handled_one_at_a_time_linger_when_asked(
    bus_world, when_idle, expected
):
    """Messages arriving one at a time, each handled before the next comes: with
    ``delete_linger_when_idle`` one DeleteMessageBatch acknowledges them all."""
    sqs = CountingSqs(bus_world.sqs)
    settings = ConsumerSettings(
        wait_time_seconds=1,
        delete_linger_seconds=3.0 if when_idle else 0.05,
        delete_linger_when_idle=when_idle,
    )
    consumer = Consumer(
        name="alpha",
        sqs=sqs,
        queue_url=bus_world.queues["alpha"].url,
        handlers={ThingCreated.event_type: partial(record_effect, consumer="alpha")},
        unit_of_work=bus_world.unit_of_work,
        settings=settings,
    )
    async with running(consumer):
        for n in range(3):
            event = new_event(ThingCreated(thing_id=f"one-{n}"), source="urn:mvno:test")
            await bus_world.sqs.send_message(
                QueueUrl=bus_world.queues["alpha"].url, MessageBody=event.body
            )
            await bus_world.wait_for(
                lambda n=n: _has(bus_world, {"alpha": n + 1}), limit=10, what="the message"
            )
            await asyncio.sleep(0.2)  # handled, and nothing else running
    assert sqs.delete_batches == expected
    assert await bus_world.queue_is_empty("alpha")


async def test_unknown_event_types_are_acknowledged_not_retried(bus_world):
    event = new_event(ThingCreated(thing_id="x"), source="urn:mvno:test")
    unknown = json.loads(event.body) | {"type": "test.thing.unplanned.v1", "id": "unknown-1"}
    await bus_world.sqs.send_message(
        QueueUrl=bus_world.queues["alpha"].url, MessageBody=json.dumps(unknown)
    )
    async with running(consumer_for(bus_world, "alpha")):
        await bus_world.wait_for(
            lambda: bus_world.queue_is_empty("alpha"), what="the unknown event to be acknowledged"
        )
    assert await bus_world.effects("alpha") == []


async def test_stop_finishes_in_flight_work_and_releases_unstarted_messages(bus_world):
    release = asyncio.Event()
    started = asyncio.Event()

    async def blocking(uow, event):
        started.set()
        await release.wait()
        await record_effect(uow, event, "alpha")

    for n in range(6):
        body = new_event(ThingCreated(thing_id=f"s{n}"), source="urn:mvno:test").body
        await bus_world.sqs.send_message(QueueUrl=bus_world.queues["alpha"].url, MessageBody=body)
    settings = ConsumerSettings(wait_time_seconds=1, concurrency=1, prefetch=5, shutdown_grace=10)
    consumer = consumer_for(bus_world, "alpha", {ThingCreated.event_type: blocking}, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    await bus_world.wait_for(lambda: _buffered(consumer, 5), what="five prefetched messages")
    stop.set()
    await asyncio.sleep(0.2)
    release.set()  # the in-flight handler finishes inside the grace period
    await asyncio.wait_for(task, 15)
    assert len(await bus_world.effects("alpha")) == 1
    answer = await bus_world.sqs.receive_message(
        QueueUrl=bus_world.queues["alpha"].url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    assert len(answer.get("Messages", [])) == 5  # visible again at once, not after 30 s


async def _buffered(consumer, count: int) -> bool:
    return consumer._buffer.qsize() >= count


def test_oversized_event_is_refused_at_publish_with_the_limit_named():
    with pytest.raises(EventTooLargeError, match="256 KiB"):
        new_event(ThingCreated(thing_id="big", note="x" * 300_000), source="urn:mvno:test")


def test_an_envelope_is_what_the_cloudevents_sdk_writes_and_reads(finished_spans):
    """Written without the SDK (a tenth of its cost), the envelope holds the same members in the
    same order as the SDK's writer gives, and the SDK reads it back."""
    data = ThingCreated(thing_id="naïve-“thing”", note="ünïcode ✓")
    with trace.get_tracer("test").start_as_current_span("producer"):
        event = new_event(data, source="urn:mvno:test", extra_attributes={"tenant": "bank"})
    written = json.loads(event.body)
    assert written["traceparent"].startswith("00-")
    attributes = {name: value for name, value in written.items() if name != "data"}
    attributes["time"] = datetime.fromisoformat(attributes["time"])
    by_sdk = JSONFormat().write(CloudEvent(attributes, data.model_dump(mode="json")))
    assert list(json.loads(by_sdk).items()) == list(written.items())
    assert written["time"].endswith("Z")
    read = decode(event.body)
    assert (read.id, read.type, read.source) == (event.id, event.type, "urn:mvno:test")
    assert read.data == data.model_dump(mode="json")
    assert read.trace_carrier["traceparent"] == written["traceparent"]
    assert event.attributes == {"type": ThingCreated.event_type, "tenant": "bank"}


def test_too_many_message_attributes_are_refused():
    with pytest.raises(EventTooLargeError, match="limit is 10"):
        check_limits("{}", {f"a{n}": "v" for n in range(11)})


async def test_consumer_span_continues_the_producer_trace(bus_world, finished_spans):
    configure_tracing(bus_world.settings)
    spans = finished_spans
    with trace.get_tracer("test").start_as_current_span("place order") as producer_span:
        [event_id] = await commit_things(bus_world, 1)
    async with running(relay_for(bus_world), consumer_for(bus_world, "beta")):
        await bus_world.wait_for(lambda: _has(bus_world, {"beta": 1}), what="the event")
    consumer_spans = [
        span
        for span in spans.get_finished_spans()
        if span.kind == trace.SpanKind.CONSUMER
        and span.attributes.get("messaging.message.id") == event_id
    ]
    assert len(consumer_spans) == 1
    assert consumer_spans[0].context.trace_id == producer_span.get_span_context().trace_id
    assert consumer_spans[0].parent.span_id == producer_span.get_span_context().span_id


def _total(reader, name: str, **attributes: str) -> float:
    """Sum of a counter's values (or a histogram's counts) over points with these attributes."""
    points = [
        p
        for p in metric_points(reader, name)
        if all(p.attributes.get(k) == v for k, v in attributes.items())
    ]
    return sum(getattr(p, "count", None) or getattr(p, "value", 0) for p in points)


async def test_bus_metrics_are_recorded(bus_world, metric_reader):
    async def failing(uow, event):
        raise RuntimeError("no")

    before = {
        "published": _total(metric_reader, "mvno.bus.outbox.published", service="test"),
        "handled": _total(metric_reader, "mvno.bus.handler.duration", consumer="beta"),
        "lag": _total(metric_reader, "mvno.bus.consumer.lag", consumer="beta"),
        "failures": _total(metric_reader, "mvno.bus.handler.failures", consumer="alpha"),
    }
    await commit_things(bus_world, 3)
    relay = relay_for(bus_world)
    await relay.publish_due()
    await commit_things(bus_world, 2, ThingRenamed)  # left unpublished: the backlog
    await relay.housekeeping()
    async with running(consumer_for(bus_world, "beta")):
        await bus_world.wait_for(lambda: _has(bus_world, {"beta": 3}), what="the events")
    body = new_event(ThingRenamed(thing_id="x"), source="urn:mvno:test").body
    await bus_world.sqs.send_message(QueueUrl=bus_world.queues["alpha"].url, MessageBody=body)
    async with running(consumer_for(bus_world, "alpha", {ThingRenamed.event_type: failing})):
        await bus_world.wait_for(
            lambda: _grew(
                metric_reader, "mvno.bus.handler.failures", before["failures"], consumer="alpha"
            ),
            what="a handler failure",
        )

    assert (
        _total(metric_reader, "mvno.bus.outbox.published", service="test") - before["published"]
        == 3
    )
    assert (
        _total(metric_reader, "mvno.bus.handler.duration", consumer="beta") - before["handled"] == 3
    )
    assert _total(metric_reader, "mvno.bus.consumer.lag", consumer="beta") - before["lag"] == 3
    [backlog] = [
        p
        for p in metric_points(metric_reader, "mvno.bus.outbox.backlog")
        if p.attributes == {"service": "test"}
    ]
    assert backlog.value == 2
    [oldest] = [
        p
        for p in metric_points(metric_reader, "mvno.bus.outbox.oldest_age")
        if p.attributes == {"service": "test"}
    ]
    assert oldest.value >= 0


async def _grew(reader, name: str, before: float, **attributes: str) -> bool:
    return _total(reader, name, **attributes) > before


async def test_dlq_depth_is_measured(bus_world, metric_reader):
    await bus_world.sqs.send_message(QueueUrl=bus_world.queues["beta"].dlq_url, MessageBody="{}")
    async with running(consumer_for(bus_world, "beta")):
        await bus_world.wait_for(lambda: _dlq_gauge(metric_reader, "beta", 1), what="the DLQ depth")


async def _dlq_gauge(reader, consumer: str, expected: int) -> bool:
    points = [
        p
        for p in metric_points(reader, "mvno.bus.dlq.depth")
        if p.attributes == {"consumer": consumer}
    ]
    return bool(points) and points[0].value == expected


async def test_messages_handled_and_the_oldest_message_age_are_measured(bus_world, metric_reader):
    def handled(outcome: str) -> float:
        return _total(metric_reader, "mvno.bus.messages.handled", consumer="beta", outcome=outcome)

    before = {"handled": handled("handled"), "ignored": handled("ignored")}
    await commit_things(bus_world, 2)
    await relay_for(bus_world).publish_due()
    unknown = new_event(ThingRenamed(thing_id="y"), source="urn:mvno:test").body.replace(
        ThingRenamed.event_type, "test.thing.unheard_of.v1"
    )
    await bus_world.sqs.send_message(QueueUrl=bus_world.queues["beta"].url, MessageBody=unknown)
    await asyncio.sleep(1.1)  # the messages wait in the queue: their age is at least this

    async def oldest_age(at_least: float, at_most: float) -> bool:
        points = metric_points(metric_reader, "mvno.bus.queue.oldest_age", consumer="beta")
        return bool(points) and at_least <= points[0].value <= at_most

    async with running(consumer_for(bus_world, "beta")):
        await bus_world.wait_for(lambda: oldest_age(1.0, 60), what="the messages' age")
        await bus_world.wait_for(lambda: _has(bus_world, {"beta": 2}), what="the events")
        await bus_world.wait_for(
            lambda: _grew(
                metric_reader,
                "mvno.bus.messages.handled",
                before["ignored"],
                consumer="beta",
                outcome="ignored",
            ),
            what="the unknown event acknowledged",
        )
        # A receive that finds the queue empty reads as no waiting message.
        await bus_world.wait_for(lambda: oldest_age(0, 0), what="the drained queue")
    assert handled("handled") - before["handled"] == 2
    assert handled("ignored") - before["ignored"] == 1
