"""Ready means orders can be taken: a fresh database's catalogue copy is waited for, not mistaken
for a catalogue that lacks every offering."""

from __future__ import annotations

import uuid

from mvno.devstack.testing import assert_problem

NEW_ESIM = {
    "channel": [{"id": "app", "role": "salesChannel"}],
    "relatedParty": [{"id": "cust-1001", "role": "Customer"}],
    "payment": [{"id": "1002003004", "@referredType": "BankAccount"}],
    "customer": {
        "idType": "sa_id",
        "idNumber": "8001015009087",
        "fullName": "Nomvula Dlamini",
        "address": {"line1": "14 Jan Smuts Avenue", "city": "Johannesburg", "postalCode": "2196"},
    },
    "productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": "starter-esim"}, "simKind": "eSIM"}
    ],
}


async def place(world):
    return await world.api.post(
        "/productOrder",
        json=NEW_ESIM,
        headers={**world.client(), "Idempotency-Key": str(uuid.uuid4())},
    )


async def test_a_fresh_copy_is_not_ready_and_refuses_orders_as_retryable_until_it_arrives(
    fresh_orders,
):
    async with fresh_orders() as world:
        waiting = await world.api.get(world.base_url + "/health/ready")
        problem = assert_problem(waiting, 503, "not-ready")
        assert problem["checks"]["database"] == problem["checks"]["bus"] == "ok"
        assert "catalogue copy is empty" in problem["checks"]["catalogue-copy"]
        assert "catalogue-copy" in problem["detail"]

        early = await place(world)
        assert_problem(early, 503, "catalogue-not-received")
        assert int(early.headers["Retry-After"]) > 0

        await world.launch_catalogue()

        ready = await world.api.get(world.base_url + "/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["catalogue-copy"] == "ok"
        placed = await place(world)
        assert placed.status_code == 201, placed.text


async def test_a_catalogue_with_nothing_launched_is_ready_once_the_grace_is_over(fresh_orders):
    # Nothing launched yet in production: no replica may stay out of the Service for good.
    async with fresh_orders(catalogue_copy_grace_seconds=0) as world:
        ready = await world.api.get(world.base_url + "/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["catalogue-copy"] == "ok"
        refused = await place(world)
        problem = assert_problem(refused, 422, "order-rejected")
        assert problem["errors"][0]["detail"] == "no such offering in the catalogue"
