"""The provisioning saga as pure code: which step comes next, what a failure leads to, how to undo.

Items are provisioned one after the other, each through the steps its kind needs. A step that
fails in a way worth retrying is retried with exponential backoff and jitter; when its retries
are spent (or it fails for good), every finished step of every item is undone in reverse order
and the order fails with the step and the reason. A refusal the customer can fix (RICA refused)
puts the order in ``pending`` instead of failing it.

Nothing here does I/O: :func:`next_move` reads an order's progress and says what to do; the
executor does it, records the outcome with :func:`succeeded` or :func:`failed`, and persists.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from mvno.orders.domain.model import Order, OrderItem, OrderState


class Step(StrEnum):
    AUTHORISE_PAYMENT = "authorise_payment"
    RESERVE_NUMBER = "reserve_number"
    START_PORT_IN = "start_port_in"
    AWAIT_PORT_IN = "await_port_in"
    REGISTER_RICA = "register_rica"
    ALLOCATE_SIM = "allocate_sim"
    ACTIVATE = "activate"
    AWAIT_BILLING_ACCOUNT = "await_billing_account"
    SWAP_SIM = "swap_sim"
    SUSPEND = "suspend"
    RESUME = "resume"
    TERMINATE = "terminate"
    CHANGE_TARIFF = "change_tariff"
    CAPTURE_PAYMENT = "capture_payment"


class Undo(StrEnum):
    VOID_PAYMENT = "void_payment"
    RELEASE_NUMBER = "release_number"
    CANCEL_PORT_IN = "cancel_port_in"
    DEACTIVATE = "deactivate"
    REFUND_PAYMENT = "refund_payment"


COMPENSATION: dict[Step, Undo] = {
    Step.AUTHORISE_PAYMENT: Undo.VOID_PAYMENT,
    Step.RESERVE_NUMBER: Undo.RELEASE_NUMBER,
    Step.START_PORT_IN: Undo.CANCEL_PORT_IN,
    Step.ACTIVATE: Undo.DEACTIVATE,
    Step.CAPTURE_PAYMENT: Undo.REFUND_PAYMENT,
}
"""What undoes a finished step; steps missing here leave nothing to undo (a RICA registration
lapses with the number, an unused eSIM profile goes back to stock at the operator)."""

PAYMENT_STEPS = (Step.AUTHORISE_PAYMENT, Step.CAPTURE_PAYMENT)


def plan(item: OrderItem) -> tuple[Step, ...]:
    """The steps an item goes through, in order; payment steps only when it costs something.

    A new line takes a number from the pool, or brings the customer's number from another network
    (port-in: requested, then awaited until the donor network lets it go).
    """
    if item.action == "add":
        number: tuple[Step, ...] = (
            (Step.START_PORT_IN, Step.AWAIT_PORT_IN)
            if item.port_in_msisdn
            else (Step.RESERVE_NUMBER,)
        )
        steps: tuple[Step, ...] = (
            Step.AUTHORISE_PAYMENT,
            *number,
            Step.REGISTER_RICA,
            Step.ALLOCATE_SIM,
            Step.ACTIVATE,
            Step.AWAIT_BILLING_ACCOUNT,
            Step.CAPTURE_PAYMENT,
        )
    elif item.action == "delete":
        steps = (Step.TERMINATE,)
    else:
        steps = {
            "bundle": (Step.AUTHORISE_PAYMENT, Step.CAPTURE_PAYMENT),
            "airtime": (Step.AUTHORISE_PAYMENT, Step.CAPTURE_PAYMENT),
            "tariff": (Step.CHANGE_TARIFF,),
            "sim_swap": (Step.ALLOCATE_SIM, Step.SWAP_SIM),
            "suspend": (Step.SUSPEND,),
            "resume": (Step.RESUME,),
        }[item.change or ""]
    if item.amount_due() == 0:
        steps = tuple(step for step in steps if step not in PAYMENT_STEPS)
    return steps


@dataclass
class RetryPolicy:
    attempts: int = 5
    """Tries of one step before its failure is final."""
    base_delay: float = 0.5
    max_delay: float = 30.0
    billing_account_timeout: float = 120.0
    """How long an activated line waits for billing-sync's account before the step fails."""
    port_in_timeout: float = 3 * 24 * 3600.0
    """How long a port-in may take before the step fails (the clearing house's window)."""
    activation_timeout: float = 600.0
    """How long an asynchronous activation may take at the network before the step fails."""

    def wait_limit(self, step: Step) -> float:
        """How long ``step`` may wait for something outside before it fails."""
        if step is Step.AWAIT_PORT_IN:
            return self.port_in_timeout
        if step is Step.ACTIVATE:
            return self.activation_timeout
        return self.billing_account_timeout

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for the ``attempt``-th retry (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass
class ItemProgress:
    """How far an item got; persisted after every step (as JSON)."""

    done: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)
    attempts: int = 0
    """Failed tries of the current step."""
    results: dict[str, Any] = field(default_factory=dict)
    """What steps returned that later steps or undos need (ids at the partners, the MSISDN)."""
    waiting_since: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "done": self.done,
            "undone": self.undone,
            "attempts": self.attempts,
            "results": self.results,
            "waiting_since": self.waiting_since,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> ItemProgress:
        return cls(**(value or {}))


@dataclass(frozen=True)
class Run:
    item_id: str
    step: Step


@dataclass(frozen=True)
class Compensate:
    item_id: str
    undo: Undo


@dataclass(frozen=True)
class Finish:
    state: OrderState


@dataclass(frozen=True)
class Idle:
    """Nothing to do now (the order is final, pending, or waits for an event)."""


Move = Run | Compensate | Finish | Idle


@dataclass(frozen=True)
class Failure:
    reason: str
    retryable: bool
    customer_must_act: bool = False


@dataclass(frozen=True)
class RetryAfter:
    seconds: float


@dataclass(frozen=True)
class StartCompensating:
    pass


@dataclass(frozen=True)
class WaitForCustomer:
    pass


Outcome = RetryAfter | StartCompensating | WaitForCustomer


def next_move(order: Order, progress: dict[str, ItemProgress]) -> Move:
    """What the executor should do next for ``order``."""
    if order.state in (OrderState.COMPLETED, OrderState.CANCELLED, OrderState.PENDING):
        return Idle()
    if order.state is OrderState.FAILED or order.failed_step is not None:
        # Undo in reverse: the last item first, each item's steps last first.
        for item in reversed(order.items):
            state = progress[item.item_id]
            for step in reversed(state.done):
                undo = COMPENSATION.get(Step(step))
                if undo is not None and undo not in state.undone:
                    return Compensate(item.item_id, undo)
        return Finish(OrderState.FAILED) if order.state is not OrderState.FAILED else Idle()
    for item in order.items:
        state = progress[item.item_id]
        for step in plan(item):
            if step not in state.done:
                return Run(item.item_id, step)
    return Finish(OrderState.COMPLETED)


def succeeded(progress: ItemProgress, step: Step, results: dict[str, Any]) -> None:
    progress.done.append(str(step))
    progress.results.update(results)
    progress.attempts = 0
    progress.waiting_since = None


def failed(
    order: Order,
    progress: ItemProgress,
    step: Step,
    failure: Failure,
    policy: RetryPolicy,
    rng: random.Random,
) -> Outcome:
    """Record a failed try of ``step``: retry later, wait for the customer, or start undoing."""
    progress.attempts += 1
    if failure.customer_must_act:
        order.failure_reason = failure.reason
        return WaitForCustomer()
    if failure.retryable and progress.attempts < policy.attempts:
        return RetryAfter(policy.delay(progress.attempts, rng))
    order.failed_step = str(step)
    order.failure_reason = failure.reason
    return StartCompensating()


def waited_too_long(
    progress: ItemProgress,
    policy: RetryPolicy,
    at: datetime,
    step: Step = Step.AWAIT_BILLING_ACCOUNT,
) -> bool:
    if progress.waiting_since is None:
        return False
    since = datetime.fromisoformat(progress.waiting_since)
    return at - since > timedelta(seconds=policy.wait_limit(step))
