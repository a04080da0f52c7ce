"""The saga's executor: take an order, run its next step, save it, go on.

A worker takes an ``orders.provisioning.step_due.v1`` work item or a due timer, asks the pure
saga (:mod:`mvno.orders.domain.saga`) what comes next, runs that one step from the table
(:mod:`mvno.orders.provisioning.steps`) and saves the outcome with what follows: a timer for a
retry or a wait, or the order's final state and its events. The calls' Idempotency-Keys make a
step re-run after a crash harmless at the partner.

A step runs one of two ways (:mod:`mvno.orders.provisioning.store`): with the order locked in a
unit of work, or alone, without a transaction, when the table says its only outcome is the
order's own record: the order is loaded with its version and saved only if still at it, and a
save that finds the order moved on by another worker is dropped. A step run alone after another
starts from the order as that one saved it, so only the first step of a run loads it.

When a step succeeds, the same worker goes on with the next one (each step saved on its own)
rather than sending itself another work item. What protects the order if that worker dies is a
lease: every save that leaves more to do sets the order's timer a lease ahead, and any worker
takes up an order whose timer fired (:meth:`Provisioner.resume`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode

from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.crypto import FieldCipher, Sealed
from mvno.common.db import StatementPool
from mvno.common.events.orders import ProvisioningStepDue
from mvno.common.tracing import ORDER_ID
from mvno.orders.domain.model import Order, OrderItem, OrderState
from mvno.orders.domain.saga import (
    Compensate,
    Finish,
    Idle,
    ItemProgress,
    Move,
    RetryAfter,
    RetryPolicy,
    Run,
    Step,
    WaitForCustomer,
    failed,
    next_move,
    succeeded,
)
from mvno.orders.handlers import announce
from mvno.orders.hub.directory import HubDirectory
from mvno.orders.provisioning import metrics
from mvno.orders.provisioning.clients import Partner, PartnerFailure
from mvno.orders.provisioning.repository import TimersRepository
from mvno.orders.provisioning.steps import (
    STEPS,
    UNDOS,
    Alone,
    Pacing,
    Partners,
    StepContext,
    StepFn,
    UndoFn,
    Waiting,
    finish,
    runs_alone,
)
from mvno.orders.provisioning.store import AloneSteps, LockedSteps, LockedStepStore, StepStore
from mvno.orders.unit_of_work import OrdersUnitOfWork

_log = logging.getLogger(__name__)
_tracer = trace.get_tracer("mvno.orders.provisioning")

StoreT = TypeVar("StoreT", bound=StepStore)


def _runs_alone(order: Order, move: Move) -> bool:
    """Whether ``move`` may run without a transaction (:meth:`Provisioner.advance_alone`)."""
    return order.state is OrderState.IN_PROGRESS and runs_alone(move)


@dataclass(frozen=True)
class _Saved:
    """An order as a step saved it, with its version and the personal data read with it: the
    next step, run alone, starts from it instead of loading the order again."""

    order: Order
    version: int
    sealed: Sealed | None


@dataclass(frozen=True)
class _Moved:
    go_on: bool
    """Another move can follow at once."""
    alone_next: bool = False
    """That move may run without a transaction (known from the state just saved, so a step that
    needs the order locked does not load it twice)."""
    saved: _Saved | None = None
    """The order as saved, once its transaction committed, when that next move runs alone."""


def _moved(
    go_on: bool, order: Order, progress: dict[str, ItemProgress], saved: _Saved | None = None
) -> _Moved:
    alone_next = go_on and _runs_alone(order, next_move(order, progress))
    return _Moved(go_on, alone_next, saved if alone_next else None)


_IDLE = _Moved(go_on=False)
"""The order has nothing to do now (done, cancelled, pending on the customer, or unknown)."""


def _dropped(order_id: str) -> _Moved:
    _log.info("order %s was moved on by another worker; dropping this step", order_id)
    return _Moved(go_on=False)


@dataclass
class _Timer:
    """What a move does to the order's timer, written with the order in one statement."""

    due: datetime | None = None
    cleared: bool = False

    def set(self, due: datetime) -> None:
        self.due, self.cleared = due, False

    def clear(self) -> None:
        self.due, self.cleared = None, True


@dataclass
class _Turn:
    """One move of one order: what it reads and changes before the order is saved."""

    order: Order
    progress: dict[str, ItemProgress]
    at: datetime
    timer: _Timer = field(default_factory=_Timer)

    def keep_progress(self) -> None:
        """Put the items' progress back on the order, to be saved with it."""
        for item in self.order.items:
            item.progress = self.progress[item.item_id].to_json()


def _progress_of(order: Order) -> dict[str, ItemProgress]:
    return {item.item_id: ItemProgress.from_json(item.progress) for item in order.items}


def now() -> datetime:
    return datetime.now(UTC)


def step_due(uow: OrdersUnitOfWork, order_id: str) -> None:
    """Queue the order's next step as a work item, in the caller's transaction."""
    uow.publish(ProvisioningStepDue(order_id=order_id))


@dataclass
class Provisioner:
    network: Partner
    bank: Partner
    cipher: FieldCipher
    policy: RetryPolicy
    unit_of_work: Callable[[], OrdersUnitOfWork]
    """Opens the transactions of the steps after the first (the consumer opens the first)."""
    steps_pool: StatementPool
    """Plain connections for the steps that run without a transaction, and the timers."""
    hubs: HubDirectory | None = None
    """Each client's hubs held in memory, read at every state change of every order."""
    poll_seconds: float = 1.0
    lease_seconds: float = 30.0
    """How soon another worker resumes an order whose worker died between two steps."""
    event_wait_seconds: float = 10.0
    """How often a step waiting for an event (the billing account) looks again without one."""
    max_steps_in_a_row: int = 100
    rng: random.Random = field(default_factory=random.Random)  # backoff jitter, not secrets
    clock: Callable[[], datetime] = now

    def __post_init__(self) -> None:
        self._partners = Partners(self.network, self.bank, self.cipher)
        self._pacing = Pacing(self.policy, self.poll_seconds, self.event_wait_seconds)

    async def advance(self, uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
        """Consumer handler for ``orders.provisioning.step_due.v1``: run steps while they succeed."""
        order_id = str(event.data["order_id"])
        moved = await self._advance_locked(uow, order_id)
        if not moved.go_on:
            return
        await uow.commit()  # the first step, its lease and the work item's inbox row
        await self._go_on(order_id, moved)

    async def resume(self, order_id: str, *, lease_until: datetime) -> None:
        """Run the steps of an order whose timer fired (a retry's backoff over, a wait to look
        at again, the billing account's answer, a lease run out) while they succeed, as for a
        work item. Its timer was moved on to ``lease_until`` when it was taken; every step saved
        sets it anew, and an order with nothing to do loses it here."""
        moved = await self.advance_alone(order_id)
        if moved is None:
            async with self.unit_of_work() as uow:
                moved = await self._advance_locked(uow, order_id)
                await uow.commit()
        if moved is _IDLE:
            async with self.steps_pool.acquire() as connection:
                await TimersRepository(connection).drop_timer(order_id=order_id, due_at=lease_until)
            return
        await self._go_on(order_id, moved)

    async def _go_on(self, order_id: str, moved: _Moved) -> None:
        """After a step that succeeded, run the next ones while they succeed."""
        if not moved.go_on:
            return
        for _ in range(self.max_steps_in_a_row):
            next_moved = None
            if moved.alone_next:
                next_moved = await self.advance_alone(order_id, moved.saved)
            if next_moved is None:
                async with self.unit_of_work() as next_uow:
                    next_moved = await self._advance_locked(next_uow, order_id)
                    await next_uow.commit()
            moved = next_moved
            if not moved.go_on:
                return
        async with self.unit_of_work() as next_uow:  # a very long order: hand it on
            step_due(next_uow, order_id)
            await next_uow.commit()

    async def advance_alone(self, order_id: str, saved: _Saved | None = None) -> _Moved | None:
        """Take the order's next move without a transaction when the table lets it run alone;
        None when it needs the order locked instead (:meth:`_advance_locked`). The order is
        loaded unless ``saved`` holds it as the step before saved it (if another worker moved
        it on since, this step's save is dropped as ever)."""
        async with self.steps_pool.acquire() as connection:
            store = AloneSteps(connection)
            if saved is not None and saved.order.id == order_id:
                order, version = saved.order, saved.version
                store.remember_personal_data(order_id, saved.sealed)
            else:
                loaded = await store.load_order(order_id=order_id)
                if loaded is None:
                    return None
                order, version = loaded
            progress = _progress_of(order)
            move = next_move(order, progress)
            if isinstance(move, Idle):
                return _IDLE
            if order.state is not OrderState.IN_PROGRESS:
                return None
            turn = _Turn(order, progress, self.clock())
            go_on = await self._take_alone(turn, move, store)
            if go_on is None:
                return None
            turn.keep_progress()
            timer = turn.timer
            if not order.changes:
                new_version = await store.save_order(
                    order=order, timer_due=timer.due, clear_timer=timer.cleared, if_version=version
                )
                if new_version is None:
                    return _dropped(order_id)
                sealed = store.loaded_personal_data(order_id)
                return _moved(go_on, order, progress, _Saved(order, new_version, sealed))
        # The order changed state (a refusal the customer must fix): its events and webhooks are
        # written with it in a unit of work, still only if nobody moved the order on meanwhile.
        async with self.unit_of_work() as uow:
            current = await uow.orders.get_order_version(order_id=order_id)
            if current is None or current.version != version:
                return _dropped(order_id)
            await uow.orders.save_order(order=order, timer_due=timer.due, clear_timer=timer.cleared)
            await announce(uow, order, self.hubs)
            await uow.commit()
        return _moved(go_on, order, progress)

    async def _advance_locked(self, uow: OrdersUnitOfWork, order_id: str) -> _Moved:
        """Take the order's next move in ``uow``, the order locked."""
        order = await uow.orders.get_order(order_id=order_id, for_update=True)
        if order is None:
            _log.warning("work item for unknown order %s", order_id)
            return _IDLE
        progress = _progress_of(order)
        move = next_move(order, progress)
        if isinstance(move, Idle):
            return _IDLE
        turn = _Turn(order, progress, self.clock())
        if order.state is OrderState.ACKNOWLEDGED:
            order.move_to(OrderState.IN_PROGRESS, turn.at)
        store = LockedSteps(uow)
        go_on = False
        if isinstance(move, Finish):
            await finish(order, move.state, turn.at, store)
            turn.timer.clear()
            _measure_finished(order, turn.at)
        else:
            go_on = await self._take_locked(turn, move, store)
        turn.keep_progress()
        version = await uow.orders.save_order(
            order=order, timer_due=turn.timer.due, clear_timer=turn.timer.cleared
        )
        await announce(uow, order, self.hubs)
        saved = _Saved(order, version, uow.orders.loaded_personal_data(order_id))
        return _moved(go_on, order, progress, saved)

    async def _take_locked(
        self, turn: _Turn, move: Run | Compensate, store: LockedStepStore
    ) -> bool:
        """Run a step or an undo, the order locked: any of the table may."""
        if isinstance(move, Run):
            step: StepFn[LockedStepStore] = STEPS[move.step].run
            return self._leased(turn, await self._run(turn, move, store, step))
        undo: UndoFn[LockedStepStore] = UNDOS[move.undo].run
        return self._leased(turn, await self._compensate(turn, move, store, undo))

    async def _take_alone(self, turn: _Turn, move: Move, store: StepStore) -> bool | None:
        """Run a step or an undo the table lets run alone; None (nothing done) for any other."""
        if isinstance(move, Run):
            step = STEPS[move.step]
            if isinstance(step, Alone):
                return self._leased(turn, await self._run(turn, move, store, step.run))
        elif isinstance(move, Compensate):
            undo = UNDOS[move.undo]
            if isinstance(undo, Alone):
                return self._leased(turn, await self._compensate(turn, move, store, undo.run))
        return None

    def _leased(self, turn: _Turn, go_on: bool) -> bool:
        """When another move can follow at once, hold the order for a lease."""
        if go_on:
            turn.timer.set(turn.at + timedelta(seconds=self.lease_seconds))
        return go_on

    def _context(self, turn: _Turn, item_id: str, what: str, store: StoreT) -> StepContext[StoreT]:
        item = _item(turn.order, item_id)
        return StepContext(
            order=turn.order,
            item=item,
            progress=turn.progress[item_id],
            key=f"{turn.order.id}:{item_id}:{what}",
            at=turn.at,
            store=store,
            partners=self._partners,
            pacing=self._pacing,
        )

    async def _run(self, turn: _Turn, move: Run, store: StoreT, step: StepFn[StoreT]) -> bool:
        """Run a step and record its outcome; True when another move can follow at once."""
        ctx = self._context(turn, move.item_id, move.step, store)
        order, state, at = turn.order, ctx.progress, turn.at
        measured = _StepMeasure(move.step)
        with _step_span(order.id, move.item_id, str(move.step), state.attempts) as span:
            try:
                results = await step(ctx)
            except Waiting as waiting:
                measured.done("waiting")
                delay = self.poll_seconds if waiting.seconds is None else waiting.seconds
                turn.timer.set(at + timedelta(seconds=delay))
                span.set_attribute("mvno.step.outcome", "waiting")
                return False
            except PartnerFailure as error:
                measured.failed(retryable=error.failure.retryable)
                span.set_status(StatusCode.ERROR, error.failure.reason)
                span.set_attribute("mvno.step.outcome", "failed")
                return self._after_failure(turn, move, state, error, measured)
            span.set_attribute("mvno.step.outcome", "done")
        measured.done("succeeded")
        succeeded(state, move.step, results)
        return True

    def _after_failure(
        self,
        turn: _Turn,
        move: Run,
        state: ItemProgress,
        error: PartnerFailure,
        measured: _StepMeasure,
    ) -> bool:
        """Record a step's failure: retry after a backoff, wait for the customer, or compensate."""
        order, at = turn.order, turn.at
        outcome = failed(order, state, move.step, error.failure, self.policy, self.rng)
        _log.info(
            "order %s item %s step %s failed (try %s): %s",
            order.id, move.item_id, move.step, state.attempts, error.failure.reason,
        )  # fmt: skip
        if isinstance(outcome, RetryAfter):
            measured.done("retry")
            turn.timer.set(at + timedelta(seconds=outcome.seconds))
            return False
        if isinstance(outcome, WaitForCustomer):
            measured.done("customer")
            order.move_to(OrderState.PENDING, at)
            turn.timer.clear()
            return False
        measured.done("failed")
        return True  # StartCompensating: the undos follow

    async def _compensate(
        self, turn: _Turn, move: Compensate, store: StoreT, undo: UndoFn[StoreT]
    ) -> bool:
        """Run an undo and record it; retryable failures wait out a backoff."""
        ctx = self._context(turn, move.item_id, move.undo, store)
        state = ctx.progress
        undone = {"undo": str(move.undo), "partner": metrics.partner_of(move.undo)}
        try:
            with _step_span(turn.order.id, move.item_id, f"undo {move.undo}", state.attempts):
                await undo(ctx)
        except PartnerFailure as error:
            if error.failure.retryable:
                metrics.compensations.add(1, {**undone, "outcome": "retry"})
                state.attempts += 1
                delay = self.policy.delay(min(state.attempts, 10), self.rng)
                turn.timer.set(turn.at + timedelta(seconds=delay))
                return False
            # A refusal to undo (already voided, already released) leaves nothing to undo.
            _log.warning(
                "order %s: %s answered %s; counted as undone", turn.order.id, move.undo, error
            )
        metrics.compensations.add(1, {**undone, "outcome": "undone"})
        state.undone.append(str(move.undo))
        state.attempts = 0
        return True


@contextmanager
def _step_span(order_id: str, item_id: str, step: str, attempts: int) -> Iterator[Span]:
    """One span per step or undo tried, in the order's trace, with its try number: a failed
    try shows as an error and its retry as the next try."""
    with _tracer.start_as_current_span(
        f"step {step}",
        attributes={
            ORDER_ID: order_id,
            "mvno.order_item_id": item_id,
            "mvno.step": step,
            "mvno.step.try": attempts + 1,
        },
    ) as span:
        yield span


class _StepMeasure:
    """One run of a step, measured: its duration by outcome, and its failure and retry."""

    def __init__(self, step: Step) -> None:
        self._attributes = {"step": str(step), "partner": metrics.partner_of(step)}
        self._started = time.perf_counter()

    def failed(self, *, retryable: bool) -> None:
        metrics.step_failures.add(1, {**self._attributes, "retryable": str(retryable).lower()})

    def done(self, outcome: str) -> None:
        if outcome == "retry":
            metrics.retries.add(1, self._attributes)
        elapsed = time.perf_counter() - self._started
        metrics.step_duration.record(elapsed, {**self._attributes, "outcome": outcome})


def _measure_finished(order: Order, at: datetime) -> None:
    """An order reached its final state: count it, and its time from capture to here."""
    state = {"state": str(order.state)}
    metrics.finished.add(1, state)
    metrics.provisioning_duration.record(max(0.0, (at - order.order_date).total_seconds()), state)


def _item(order: Order, item_id: str) -> OrderItem:
    return next(item for item in order.items if item.item_id == item_id)
