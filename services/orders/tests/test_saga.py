"""The provisioning saga's pure rules: plans, the order of undoing, waiting limits."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from mvno.orders.domain.model import Order, OrderItem, OrderState
from mvno.orders.domain.saga import (
    Compensate,
    Failure,
    Finish,
    ItemProgress,
    RetryPolicy,
    Run,
    StartCompensating,
    Step,
    Undo,
    failed,
    next_move,
    plan,
    succeeded,
    waited_too_long,
)

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PRICE = [{"price_type": "oneTime", "tax_included_amount": "10.00"}]


def new_line(**changes) -> OrderItem:
    values = {"prices": PRICE, **changes}
    return OrderItem(
        item_id="1", action="add", state=OrderState.ACKNOWLEDGED, sim_kind="pSIM", **values
    )


def order_of(item: OrderItem) -> Order:
    return Order(
        id="o-1", customer_id="c-1", channel="app", client_id="bank-app",
        state=OrderState.IN_PROGRESS, sequence=2, order_date=AT, updated_at=AT, items=[item],
    )  # fmt: skip


def test_a_new_line_takes_a_number_from_the_pool_or_ports_one_in():
    assert plan(new_line()) == (
        Step.AUTHORISE_PAYMENT, Step.RESERVE_NUMBER, Step.REGISTER_RICA, Step.ALLOCATE_SIM,
        Step.ACTIVATE, Step.AWAIT_BILLING_ACCOUNT, Step.CAPTURE_PAYMENT,
    )  # fmt: skip
    assert plan(new_line(port_in_msisdn="+27821234567")) == (
        Step.AUTHORISE_PAYMENT, Step.START_PORT_IN, Step.AWAIT_PORT_IN, Step.REGISTER_RICA,
        Step.ALLOCATE_SIM, Step.ACTIVATE, Step.AWAIT_BILLING_ACCOUNT, Step.CAPTURE_PAYMENT,
    )  # fmt: skip
    assert Step.AUTHORISE_PAYMENT not in plan(new_line(prices=[]))


def test_a_final_failure_undoes_finished_steps_last_first():
    item = new_line(port_in_msisdn="+27821234567")
    order = order_of(item)
    progress = {"1": ItemProgress()}
    for step in (Step.AUTHORISE_PAYMENT, Step.START_PORT_IN, Step.AWAIT_PORT_IN):
        assert next_move(order, progress) == Run("1", step)
        succeeded(progress["1"], step, {})
    refusal = Failure("the donor refused", retryable=False)
    outcome = failed(
        order, progress["1"], Step.REGISTER_RICA, refusal, RetryPolicy(), random.Random(1)
    )
    assert isinstance(outcome, StartCompensating)
    assert order.failed_step == "register_rica"
    assert next_move(order, progress) == Compensate("1", Undo.CANCEL_PORT_IN)
    progress["1"].undone.append(str(Undo.CANCEL_PORT_IN))
    assert next_move(order, progress) == Compensate("1", Undo.VOID_PAYMENT)
    progress["1"].undone.append(str(Undo.VOID_PAYMENT))
    assert next_move(order, progress) == Finish(OrderState.FAILED)


def test_a_port_in_may_wait_days_but_a_billing_account_only_minutes():
    policy = RetryPolicy(billing_account_timeout=120, port_in_timeout=3 * 24 * 3600)
    waiting = ItemProgress(waiting_since=AT.isoformat())
    an_hour_later = AT + timedelta(hours=1)
    assert waited_too_long(waiting, policy, an_hour_later, Step.AWAIT_BILLING_ACCOUNT)
    assert not waited_too_long(waiting, policy, an_hour_later, Step.AWAIT_PORT_IN)
    assert waited_too_long(waiting, policy, AT + timedelta(days=3, seconds=1), Step.AWAIT_PORT_IN)
    assert not waited_too_long(ItemProgress(), policy, an_hour_later, Step.AWAIT_PORT_IN)
