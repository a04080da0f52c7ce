"""An order's answer, built as plain data, is what its documented model (OrderRead) gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mvno.common.tmf import dump
from mvno.orders.domain.model import Order, OrderItem, OrderState
from mvno.orders.schemas import OrderRead, order_answer, order_answer_json

AT = datetime(2026, 12, 7, 10, 30, 15, 123456, tzinfo=UTC)
PRICE = {
    "price_id": "p-1",
    "price_type": "recurring",
    "recurring_period": "month",
    "unit_of_measure": None,
    "duty_free_amount": "86.96",
    "tax_included_amount": "100.00",
    "tax_rate": "15",
}


def _order(**overrides) -> Order:
    values = {
        "id": "o-1",
        "customer_id": "cust-1",
        "channel": "branch",
        "client_id": "bank-branch",
        "state": OrderState.ACKNOWLEDGED,
        "sequence": 1,
        "order_date": AT,
        "updated_at": AT,
        "items": [
            OrderItem(
                item_id="1",
                action="add",
                state=OrderState.ACKNOWLEDGED,
                offering_id="contract-5gb",
                offering_name="Contract 5 GB",
                sim_kind="pSIM",
                prices=[PRICE, {**PRICE, "price_type": "oneTime", "recurring_period": None}],
            ),
            OrderItem(
                item_id="2",
                action="modify",
                state=OrderState.ACKNOWLEDGED,
                change="suspend",
                subscription_id="sub-9",
            ),
        ],
    }
    return Order(**{**values, **overrides})


@pytest.mark.parametrize(
    "order",
    [
        _order(),
        _order(external_id="ext-7"),
        _order(
            state=OrderState.FAILED,
            completion_date=AT,
            failed_step="activate",
            failure_reason="the network refused the SIM",
        ),
    ],
    ids=["acknowledged", "with an external id", "failed"],
)
def test_the_answer_is_the_documented_model_dumped(order):
    answer = order_answer(order)
    documented = OrderRead.model_validate(answer)
    assert json.loads(order_answer_json(order)) == dump(documented)
    assert order_answer_json(order) == documented.__pydantic_serializer__.to_json(
        documented, by_alias=True, exclude_none=True
    )
    assert "customer" not in answer
    assert "payment" not in answer
