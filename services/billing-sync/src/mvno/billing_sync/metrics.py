"""billing-sync's metrics (names in :mod:`mvno.common.metric_catalog`): usage records ingested
and quarantined per source, counted once their batch is committed, and the drift the last
reconciliation found, by kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from mvno.common import metric_catalog as catalog

if TYPE_CHECKING:
    from mvno.billing_sync.ingest import BatchResult, Source

DRIFTS = ("missing", "extra", "wrong_tariff")
"""Every kind of drift reconciliation tells apart (mvno.billing_sync.domain.accounts.Drift)."""

_meter = metrics.get_meter("mvno.billing_sync")
_ingested = _meter.create_counter(
    catalog.USAGE_INGESTED.name,
    unit=catalog.USAGE_INGESTED.unit,
    description=catalog.USAGE_INGESTED.description,
)
_quarantined = _meter.create_counter(
    catalog.USAGE_QUARANTINED.name,
    unit=catalog.USAGE_QUARANTINED.unit,
    description=catalog.USAGE_QUARANTINED.description,
)
_drift: dict[str, int] = {}


def _observe_drift(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(count, {"drift": kind}) for kind, count in list(_drift.items())]


_meter.create_observable_gauge(
    catalog.RECONCILIATION_DRIFT.name,
    [_observe_drift],
    unit=catalog.RECONCILIATION_DRIFT.unit,
    description=catalog.RECONCILIATION_DRIFT.description,
)


def batch_committed(result: BatchResult, *, source: Source) -> None:
    """Count a usage batch's records, once its transaction committed."""
    _ingested.add(result.accepted, {"source": source})
    _quarantined.add(result.quarantined, {"source": source})


def reconciled(drifts: Iterable[str]) -> None:
    """Report what the reconciliation just run found (every kind, zeros included)."""
    found = Counter(drifts)
    _drift.update({kind: found.get(kind, 0) for kind in DRIFTS})
