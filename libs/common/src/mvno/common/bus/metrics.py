"""Bus metrics (OpenTelemetry): outbox backlog and age, messages handled, consumer lag, handler
time and failures, the age of the oldest message received, DLQ depth. Names and attributes are
the catalogue's (:mod:`mvno.common.metric_catalog`); no-ops when no exporter is configured.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from mvno.common import metric_catalog as catalog

_meter = metrics.get_meter("mvno.bus")

events_published = _meter.create_counter(
    catalog.OUTBOX_PUBLISHED.name,
    unit=catalog.OUTBOX_PUBLISHED.unit,
    description=catalog.OUTBOX_PUBLISHED.description,
)
publish_failures = _meter.create_counter(
    catalog.OUTBOX_PUBLISH_FAILURES.name,
    unit=catalog.OUTBOX_PUBLISH_FAILURES.unit,
    description=catalog.OUTBOX_PUBLISH_FAILURES.description,
)
messages_handled = _meter.create_counter(
    catalog.MESSAGES_HANDLED.name,
    unit=catalog.MESSAGES_HANDLED.unit,
    description=catalog.MESSAGES_HANDLED.description,
)
handler_duration = _meter.create_histogram(
    catalog.HANDLER_DURATION.name,
    unit=catalog.HANDLER_DURATION.unit,
    description=catalog.HANDLER_DURATION.description,
)
handler_failures = _meter.create_counter(
    catalog.HANDLER_FAILURES.name,
    unit=catalog.HANDLER_FAILURES.unit,
    description=catalog.HANDLER_FAILURES.description,
)
consumer_lag = _meter.create_histogram(
    catalog.CONSUMER_LAG.name,
    unit=catalog.CONSUMER_LAG.unit,
    description=catalog.CONSUMER_LAG.description,
)


class Gauges:
    """Latest values the relay and consumer measure on their own schedule, read by the exporter."""

    outbox_backlog: dict[str, int] = {}
    outbox_oldest_age: dict[str, float] = {}
    dlq_depth: dict[str, int] = {}
    oldest_received_age: dict[str, float] = {}
    """Per consumer, the age of the oldest message its last receive brought (0 when that
    receive found the queue empty)."""


def _observe(values: dict[str, int] | dict[str, float], key: str) -> Iterable[Observation]:
    return [Observation(value, {key: name}) for name, value in list(values.items())]


def _backlog(options: CallbackOptions) -> Iterable[Observation]:
    return _observe(Gauges.outbox_backlog, "service")


def _oldest(options: CallbackOptions) -> Iterable[Observation]:
    return _observe(Gauges.outbox_oldest_age, "service")


def _dlq(options: CallbackOptions) -> Iterable[Observation]:
    return _observe(Gauges.dlq_depth, "consumer")


def _oldest_received(options: CallbackOptions) -> Iterable[Observation]:
    return _observe(Gauges.oldest_received_age, "consumer")


_meter.create_observable_gauge(
    catalog.OUTBOX_BACKLOG.name,
    [_backlog],
    unit=catalog.OUTBOX_BACKLOG.unit,
    description=catalog.OUTBOX_BACKLOG.description,
)
_meter.create_observable_gauge(
    catalog.OUTBOX_OLDEST_AGE.name,
    [_oldest],
    unit=catalog.OUTBOX_OLDEST_AGE.unit,
    description=catalog.OUTBOX_OLDEST_AGE.description,
)
_meter.create_observable_gauge(
    catalog.DLQ_DEPTH.name,
    [_dlq],
    unit=catalog.DLQ_DEPTH.unit,
    description=catalog.DLQ_DEPTH.description,
)
_meter.create_observable_gauge(
    catalog.QUEUE_OLDEST_AGE.name,
    [_oldest_received],
    unit=catalog.QUEUE_OLDEST_AGE.unit,
    description=catalog.QUEUE_OLDEST_AGE.description,
)
