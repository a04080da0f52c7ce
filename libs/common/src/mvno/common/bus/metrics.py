"""Bus metrics (OpenTelemetry): outbox backlog and age, consumer lag, handler time and failures,
DLQ depth. Exported with the rest of a service's telemetry; no-ops when none is configured.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

_meter = metrics.get_meter("mvno.bus")

events_published = _meter.create_counter(
    "mvno.bus.outbox.published", unit="{event}", description="Events the relay published"
)
publish_failures = _meter.create_counter(
    "mvno.bus.outbox.publish_failures", unit="{event}", description="Events whose publish failed"
)
handler_duration = _meter.create_histogram(
    "mvno.bus.handler.duration", unit="s", description="Time a consumer's handler took per event"
)
handler_failures = _meter.create_counter(
    "mvno.bus.handler.failures", unit="{event}", description="Events whose handler raised"
)
consumer_lag = _meter.create_histogram(
    "mvno.bus.consumer.lag", unit="s", description="From an event's creation to its handling"
)


class Gauges:
    """Latest values the relay and consumer measure on their own schedule, read by the exporter."""

    outbox_backlog: dict[str, int] = {}
    outbox_oldest_age: dict[str, float] = {}
    dlq_depth: dict[str, int] = {}


def _observe(values: dict[str, int] | dict[str, float], key: str) -> Iterable[Observation]:
    return [Observation(value, {key: name}) for name, value in list(values.items())]


def _backlog(options: CallbackOptions) -> Iterable[Observation]:
    return _observe(Gauges.outbox_backlog, "service")


def _oldest(options: CallbackOptions) -> Iterable[Observation]:
    return _observe(Gauges.outbox_oldest_age, "service")


def _dlq(options: CallbackOptions) -> Iterable[Observation]:
    return _observe(Gauges.dlq_depth, "consumer")


_meter.create_observable_gauge(
    "mvno.bus.outbox.backlog", [_backlog], unit="{event}", description="Unpublished outbox rows"
)
_meter.create_observable_gauge(
    "mvno.bus.outbox.oldest_age",
    [_oldest],
    unit="s",
    description="Age of the oldest unpublished row",
)
_meter.create_observable_gauge(
    "mvno.bus.dlq.depth", [_dlq], unit="{message}", description="Messages in a consumer's DLQ"
)
