"""The saga's metrics (names in :mod:`mvno.common.metric_catalog`): step duration, failures and
retries per step and partner, compensations, orders finished and their end-to-end time, and the
open orders by state, refreshed by each worker's housekeeping (a count over the state index,
never on a step's path).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import suppress

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from mvno.common import metric_catalog as catalog
from mvno.common.db import StatementPool
from mvno.orders.domain.model import OrderState
from mvno.orders.domain.saga import PAYMENT_STEPS, Step, Undo
from mvno.orders.provisioning.repository import TimersRepository

_log = logging.getLogger(__name__)
_meter = metrics.get_meter("mvno.orders.provisioning")

NETWORK, BANK, BILLING = "network operator", "bank", "billing-sync"
"""The partner a step calls, as the partner clients (and their circuit breakers) name it."""

OPEN_STATES = (OrderState.ACKNOWLEDGED, OrderState.IN_PROGRESS, OrderState.PENDING)


def partner_of(action: Step | Undo) -> str:
    """Who a step or an undo waits on: the bank for payments, billing-sync for the billing
    account, the network operator for everything else."""
    if action in PAYMENT_STEPS or action in (Undo.VOID_PAYMENT, Undo.REFUND_PAYMENT):
        return BANK
    if action is Step.AWAIT_BILLING_ACCOUNT:
        return BILLING
    return NETWORK


def _counter(spec: catalog.MetricSpec) -> metrics.Counter:
    return _meter.create_counter(spec.name, unit=spec.unit, description=spec.description)


def _histogram(spec: catalog.MetricSpec) -> metrics.Histogram:
    return _meter.create_histogram(spec.name, unit=spec.unit, description=spec.description)


step_duration = _histogram(catalog.SAGA_STEP_DURATION)
step_failures = _counter(catalog.SAGA_STEP_FAILURES)
retries = _counter(catalog.SAGA_RETRIES)
compensations = _counter(catalog.SAGA_COMPENSATIONS)
finished = _counter(catalog.SAGA_FINISHED)
provisioning_duration = _histogram(catalog.PROVISIONING_DURATION)

_open_orders: dict[str, int] = {}


def _observe_open(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(count, {"state": state}) for state, count in list(_open_orders.items())]


_meter.create_observable_gauge(
    catalog.ORDERS_BY_STATE.name,
    [_observe_open],
    unit=catalog.ORDERS_BY_STATE.unit,
    description=catalog.ORDERS_BY_STATE.description,
)


async def measure_open_orders(pool: StatementPool) -> None:
    """Count the orders not yet final, by state, for the gauge (every state reported, zeros too)."""
    async with pool.acquire() as connection:
        counts = await TimersRepository(connection).open_orders_by_state(
            states=[str(state) for state in OPEN_STATES]
        )
    _open_orders.update({str(state): counts.get(str(state), 0) for state in OPEN_STATES})


async def keep_measuring_open_orders(
    pool: StatementPool, stop: asyncio.Event, *, interval: float
) -> None:
    """Refresh the open orders' gauge every ``interval`` seconds until ``stop``."""
    while not stop.is_set():
        try:
            await measure_open_orders(pool)
        except Exception as exc:  # the database is away: the gauge keeps its last values
            _log.warning("counting the open orders failed: %s", exc)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
