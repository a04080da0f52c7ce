"""Every metric the platform emits, by name, in one place: the contract between the code, the
ADOT collector's EMF export (``k8s/base/adot-collector.yaml``) and the alarms and dashboard in
``infra/terraform/``.

Like the bus topology, it names what each service emits so that the collector and Terraform can be
checked against it (``tests/deploy``); the instruments themselves are created where they are
measured, by these names. In CloudWatch each metric keeps its name, in the ``NAMESPACE``
namespace, with each of its ``dimension_sets`` (attribute names, ``service.name`` being the
emitting service's resource attribute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NAMESPACE = "MVNO"
"""The CloudWatch namespace the collector's EMF exporter writes every platform metric into."""

Kind = Literal["counter", "histogram", "gauge", "updown"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...]
    """Attributes the code records with each measurement."""
    dimension_sets: tuple[tuple[str, ...], ...]
    """The attribute sets CloudWatch keeps it by (each a subset of the attributes or
    ``service.name``): few and of low cardinality, as each combination is a billed metric."""
    emitted_by: str


SERVICE = "service.name"

# --- HTTP (every service, ServerTelemetryMiddleware) -------------------------------------------
HTTP_DURATION = MetricSpec(
    "http.server.request.duration",
    "histogram",
    "s",
    "Requests per route: rate (count), errors (error.type) and duration",
    ("http.request.method", "http.route", "http.response.status_code", "error.type"),
    ((SERVICE,), (SERVICE, "http.route"), (SERVICE, "error.type")),
    "every service's API",
)
HTTP_ACTIVE = MetricSpec(
    "http.server.active_requests",
    "updown",
    "{request}",
    "Requests being served",
    ("http.request.method", "url.scheme"),
    ((SERVICE,),),
    "every service's API",
)

# --- The bus (mvno.common.bus) -----------------------------------------------------------------
OUTBOX_PUBLISHED = MetricSpec(
    "mvno.bus.outbox.published",
    "counter",
    "{event}",
    "Events the relay published",
    ("service",),
    (("service",),),
    "outbox relay",
)
OUTBOX_PUBLISH_FAILURES = MetricSpec(
    "mvno.bus.outbox.publish_failures",
    "counter",
    "{event}",
    "Events whose publish failed (retried with backoff)",
    ("service",),
    (("service",),),
    "outbox relay",
)
OUTBOX_BACKLOG = MetricSpec(
    "mvno.bus.outbox.backlog",
    "gauge",
    "{event}",
    "Unpublished outbox rows (each relaying process reports it: read the Maximum)",
    ("service",),
    (("service",),),
    "outbox relay (housekeeping)",
)
OUTBOX_OLDEST_AGE = MetricSpec(
    "mvno.bus.outbox.oldest_age",
    "gauge",
    "s",
    "Age of the oldest unpublished outbox row (each relaying process reports it: read the Maximum)",
    ("service",),
    (("service",),),
    "outbox relay (housekeeping)",
)
MESSAGES_HANDLED = MetricSpec(
    "mvno.bus.messages.handled",
    "counter",
    "{message}",
    "Messages a consumer handled (outcome: handled, duplicate, ignored, failed)",
    ("consumer", "type", "outcome"),
    (("consumer",), ("consumer", "outcome")),
    "consumers",
)
HANDLER_DURATION = MetricSpec(
    "mvno.bus.handler.duration",
    "histogram",
    "s",
    "Time a consumer's handler took per event",
    ("consumer", "type"),
    (("consumer",),),
    "consumers",
)
HANDLER_FAILURES = MetricSpec(
    "mvno.bus.handler.failures",
    "counter",
    "{event}",
    "Events whose handler raised (retried, then dead-lettered)",
    ("consumer", "type"),
    (("consumer",),),
    "consumers",
)
CONSUMER_LAG = MetricSpec(
    "mvno.bus.consumer.lag",
    "histogram",
    "s",
    "From an event's creation to its handling",
    ("consumer",),
    (("consumer",),),
    "consumers",
)
QUEUE_OLDEST_AGE = MetricSpec(
    "mvno.bus.queue.oldest_age",
    "gauge",
    "s",
    "Age (SQS SentTimestamp) of the oldest message the last receive brought; 0 when empty",
    ("consumer",),
    (("consumer",),),
    "consumers",
)
DLQ_DEPTH = MetricSpec(
    "mvno.bus.dlq.depth",
    "gauge",
    "{message}",
    "Messages in a consumer's dead-letter queue (each replica reports it: read the Maximum)",
    ("consumer",),
    (("consumer",),),
    "consumers",
)

# --- Partners (mvno.common.partners) -----------------------------------------------------------
CIRCUIT_STATE = MetricSpec(
    "mvno.partner.circuit.state",
    "gauge",
    "1",
    "Circuit breaker per partner: 0 closed, 1 half-open, 2 open",
    ("partner",),
    ((SERVICE, "partner"),),
    "every partner client",
)

# --- The provisioning saga (orders) ------------------------------------------------------------
SAGA_STEP_DURATION = MetricSpec(
    "mvno.orders.saga.step.duration",
    "histogram",
    "s",
    "Time a saga step took (outcome: succeeded, retry, failed, customer, waiting)",
    ("step", "partner", "outcome"),
    (("step",), ("partner",)),
    "orders provisioning workers",
)
SAGA_STEP_FAILURES = MetricSpec(
    "mvno.orders.saga.step.failures",
    "counter",
    "{failure}",
    "Saga steps that failed at a partner (retryable or not)",
    ("step", "partner", "retryable"),
    (("partner",), ("step", "partner")),
    "orders provisioning workers",
)
SAGA_RETRIES = MetricSpec(
    "mvno.orders.saga.retries",
    "counter",
    "{retry}",
    "Saga steps scheduled again after a backoff",
    ("step", "partner"),
    (("partner",),),
    "orders provisioning workers",
)
SAGA_COMPENSATIONS = MetricSpec(
    "mvno.orders.saga.compensations",
    "counter",
    "{undo}",
    "Undos run to compensate a failed order (outcome: undone, retry)",
    ("undo", "partner", "outcome"),
    (("undo",),),
    "orders provisioning workers",
)
SAGA_FINISHED = MetricSpec(
    "mvno.orders.saga.finished",
    "counter",
    "{order}",
    "Orders that reached a final state (state: completed, failed, cancelled)",
    ("state",),
    (("state",),),
    "orders provisioning workers",
)
PROVISIONING_DURATION = MetricSpec(
    "mvno.orders.provisioning.duration",
    "histogram",
    "s",
    "From an order's capture to its final state, end to end",
    ("state",),
    (("state",),),
    "orders provisioning workers",
)
ORDERS_BY_STATE = MetricSpec(
    "mvno.orders.open",
    "gauge",
    "{order}",
    "Orders not yet final, by state (pending: waiting on the customer); each worker reports the same count: read the Maximum",
    ("state",),
    (("state",),),
    "orders provisioning workers (housekeeping)",
)

# --- billing-sync ------------------------------------------------------------------------------
USAGE_INGESTED = MetricSpec(
    "mvno.billing.usage.ingested",
    "counter",
    "{record}",
    "Usage records accepted (source: usage_file, usage_api)",
    ("source",),
    (("source",),),
    "billing-sync work",
)
USAGE_QUARANTINED = MetricSpec(
    "mvno.billing.usage.quarantined",
    "counter",
    "{record}",
    "Usage records quarantined (invalid, or for a number the platform does not know)",
    ("source",),
    (("source",),),
    "billing-sync work",
)
RECONCILIATION_DRIFT = MetricSpec(
    "mvno.billing.reconciliation.drift",
    "gauge",
    "{line}",
    "Lines the last reconciliation found drifted from the billing platform, by kind",
    ("drift",),
    (("drift",),),
    "billing-sync work (reconciliation)",
)

# --- The canary (mvno-canary) ------------------------------------------------------------------
CANARY_PROBES = MetricSpec(
    "mvno.canary.probes",
    "counter",
    "{probe}",
    "Canary probes run, by probe and outcome (success, failure)",
    ("probe", "outcome"),
    (("probe", "outcome"),),
    "canary",
)
CANARY_PROBE_DURATION = MetricSpec(
    "mvno.canary.probe.duration",
    "histogram",
    "s",
    "How long a canary probe took",
    ("probe", "outcome"),
    (("probe",),),
    "canary",
)

CATALOG: tuple[MetricSpec, ...] = (
    HTTP_DURATION,
    HTTP_ACTIVE,
    OUTBOX_PUBLISHED,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    MESSAGES_HANDLED,
    HANDLER_DURATION,
    HANDLER_FAILURES,
    CONSUMER_LAG,
    QUEUE_OLDEST_AGE,
    DLQ_DEPTH,
    CIRCUIT_STATE,
    SAGA_STEP_DURATION,
    SAGA_STEP_FAILURES,
    SAGA_RETRIES,
    SAGA_COMPENSATIONS,
    SAGA_FINISHED,
    PROVISIONING_DURATION,
    ORDERS_BY_STATE,
    USAGE_INGESTED,
    USAGE_QUARANTINED,
    RECONCILIATION_DRIFT,
    CANARY_PROBES,
    CANARY_PROBE_DURATION,
)
"""Every metric, in the order the README's table lists them."""


def by_name() -> dict[str, MetricSpec]:
    return {spec.name: spec for spec in CATALOG}
