"""The provisioning saga end to end: orders API, bus, a worker, and the partner simulators."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from mvno.common import metric_catalog as catalog
from mvno.common.db import StatementPool, asyncpg_dsn
from mvno.devstack.testing import metric_points
from mvno.orders.provisioning.metrics import measure_open_orders

VALID_SA_ID = "8001015009087"
CUSTOMER = {
    "idType": "sa_id",
    "idNumber": VALID_SA_ID,
    "fullName": "Thabo Mokoena",
    "address": {"line1": "3 Long Street", "city": "Cape Town", "postalCode": "8001"},
}
NEW_PSIM = {
    "channel": [{"id": "app"}],
    "relatedParty": [{"id": "cust-77"}],
    "customer": CUSTOMER,
    "payment": [{"id": "1002003004"}],
    "productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": "starter-psim"}, "simKind": "pSIM"}
    ],
}
FINAL = {"completed", "failed", "cancelled", "pending"}


def orders_of(world):
    """The orders world of a provisioning world, or the orders world itself."""
    return getattr(world, "orders", world)


async def place(world, body) -> dict:
    orders = orders_of(world)
    response = await orders.api.post(
        "/productOrder",
        json=body,
        headers={**orders.client(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def fetch(world, query: str, *args) -> list:
    """The rows ``query`` reads from the orders database."""
    connection = await orders_of(world).database()
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def line_of(world, order_id: str) -> dict:
    rows = await fetch(world, "SELECT * FROM subscriptions WHERE order_id = $1", order_id)
    return dict(rows[0]) if rows else {}


async def change_line(world, subscription_id: str, **item) -> dict:
    body = {
        "channel": [{"id": "app"}],
        "relatedParty": [{"id": "cust-77"}],
        "payment": [{"id": "1002003004"}],
        "productOrderItem": [{"id": "1", "product": {"id": subscription_id}, **item}],
    }
    order = await place(world, body)
    return await world.order_state(order["id"], until=FINAL)


async def test_a_new_line_is_provisioned_and_then_changed_through_its_life(provisioning):
    world = provisioning
    order = await place(world, NEW_PSIM)
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "completed", done
    assert done["productOrderItem"][0]["state"] == "completed"
    line = await line_of(world, order["id"])
    assert line["status"] == "active"
    assert line["msisdn"].startswith("+27")
    at_operator = (
        await world.simulators.get(f"/mno/v1/subscriptions/{line['partner_subscription_id']}")
    ).json()
    assert at_operator["status"] == "active"
    assert at_operator["msisdn"] == line["msisdn"]
    assert done["productOrderItem"][0]["product"]["id"] == line["id"]

    bundle = await change_line(
        world, line["id"], action="modify", change="bundle", productOffering={"id": "data-1gb-30d"}
    )
    assert bundle["state"] == "completed", bundle
    suspended = await change_line(world, line["id"], action="modify", change="suspend")
    assert suspended["state"] == "completed", suspended
    assert (await line_of(world, order["id"]))["status"] == "suspended"
    resumed = await change_line(world, line["id"], action="modify", change="resume")
    assert resumed["state"] == "completed"
    ended = await change_line(world, line["id"], action="delete")
    assert ended["state"] == "completed"
    assert (await line_of(world, order["id"]))["status"] == "terminated"
    at_operator = (
        await world.simulators.get(f"/mno/v1/subscriptions/{line['partner_subscription_id']}")
    ).json()
    assert at_operator["status"] == "terminated"

    await asyncio.sleep(1)  # the last events reach the observer queue
    published = {(e["type"], e["subject"]) for e in world.published}
    for event_type in (
        "orders.subscription.activated.v1",
        "orders.bundle.purchased.v1",
        "orders.subscription.suspended.v1",
        "orders.subscription.resumed.v1",
        "orders.subscription.terminated.v1",
    ):
        assert (event_type, line["id"]) in published, event_type


async def test_a_new_esim_line_is_in_the_inventory_and_only_a_secrets_holder_sees_its_code(
    provisioning,
):
    world = provisioning
    body = copy.deepcopy(NEW_PSIM)
    body["relatedParty"] = [{"id": "cust-esim"}]
    body["productOrderItem"][0].update(productOffering={"id": "starter-esim"}, simKind="eSIM")
    order = await place(world, body)
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "completed", done
    line_id = done["productOrderItem"][0]["product"]["id"]
    inventory = f"{world.orders.base_url}/tmf-api/productInventory/v4"
    reader = world.orders.client("staff-tool", scopes=("inventory:read",))

    listed = await world.orders.api.get(
        f"{inventory}/product", params={"relatedParty.id": "cust-esim"}, headers=reader
    )
    assert listed.status_code == 200, listed.text
    assert listed.headers["X-Total-Count"] == "1"
    [product] = listed.json()
    assert product["id"] == line_id
    assert product["status"] == "active"
    assert product["productOffering"]["id"] == "starter-esim"
    assert product["relatedParty"] == [{"id": "cust-esim", "role": "Customer"}]
    traits = {c["name"]: c["value"] for c in product["productCharacteristic"]}
    assert traits["simKind"] == "eSIM"
    assert traits["msisdn"].startswith("+27")
    assert product["productOrderItem"] == [{"productOrderId": order["id"]}]
    assert "activation" not in json.dumps(product).lower()
    single = await world.orders.api.get(f"{inventory}/product/{line_id}", headers=reader)
    assert single.json() == product
    missing = await world.orders.api.get(f"{inventory}/product/no-such-line", headers=reader)
    assert missing.status_code == 404
    others = await world.orders.api.get(
        f"{inventory}/product", params={"relatedParty.id": "cust-other"}, headers=reader
    )
    assert others.json() == []
    assert others.headers["X-Total-Count"] == "0"

    # The activation code opens the line: a plain reader or ordering client may not see it.
    code_url = f"{inventory}/product/{line_id}/esimActivation"
    for headers in (reader, world.orders.client()):
        refused = await world.orders.api.get(code_url, headers=headers)
        assert refused.status_code == 403, refused.text
    secrets = world.orders.client("portal-api", scopes=("inventory:secrets",))
    opened = await world.orders.api.get(code_url, headers=secrets)
    assert opened.status_code == 200, opened.text
    assert opened.headers["Cache-Control"] == "no-store"
    at_operator = (await world.simulators.get(f"/mno/v1/sims/{traits['iccid']}")).json()
    assert opened.json() == {"activationCode": at_operator["activationCode"]}
    row = await line_of(world, order["id"])
    assert at_operator["activationCode"] not in json.dumps(row, default=str)

    # A physical SIM has no activation code.
    psim = await place(world, NEW_PSIM)
    psim_done = await world.order_state(psim["id"], until=FINAL)
    psim_line = psim_done["productOrderItem"][0]["product"]["id"]
    answer = await world.orders.api.get(
        f"{inventory}/product/{psim_line}/esimActivation", headers=secrets
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_failing_step_is_retried_until_it_succeeds(provisioning):
    world = provisioning
    await world.simulators.put("/admin/faults/mno/reserve_number", json={"outage": True})
    order = await place(world, NEW_PSIM)
    # The outage lasts until the step has failed twice (a fixed time raced the retries' backoff).
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        progress = await progress_of(world, order["id"])
        if (progress or {}).get("attempts", 0) >= 2:
            break
        assert asyncio.get_running_loop().time() < deadline, progress
        await asyncio.sleep(0.02)
    await world.simulators.delete("/admin/faults/mno/reserve_number")
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "completed", done


async def test_spent_retries_undo_finished_steps_in_reverse_and_fail_the_order(provisioning):
    world = provisioning
    await world.simulators.put(
        "/admin/faults/mno/activate_subscription", json={"errorRate": 1, "errorStatus": 503}
    )
    order = await place(world, NEW_PSIM)
    done = await world.order_state(order["id"], until={"failed"})
    assert done["state"] == "failed", done
    assert done["failedStep"] == "activate"
    assert "network operator" in done["failureReason"]
    connection = await world.orders.database()
    try:
        progress = await connection.fetchval(
            "SELECT progress FROM order_items WHERE order_id = $1", order["id"]
        )
    finally:
        await connection.close()
    progress = json.loads(progress) if isinstance(progress, str) else progress
    assert progress["undone"] == ["release_number", "void_payment"]
    payment = (
        await world.simulators.get(f"/payments/v1/payments/{progress['results']['payment_id']}")
    ).json()
    assert payment["status"] == "voided"
    reservation = (
        await world.simulators.get(
            f"/mno/v1/msisdn-reservations/{progress['results']['reservation_id']}"
        )
    ).json()
    assert reservation["status"] == "released"
    assert await line_of(world, order["id"]) == {}


async def test_a_rica_refusal_waits_for_the_customer(provisioning):
    world = provisioning
    body = copy.deepcopy(NEW_PSIM)
    body["customer"] = {
        "idType": "passport",
        "idNumber": "A1234567",
        "passportCountry": "XX",
        "dateOfBirth": "1990-05-01",
        "fullName": "Jane Doe",
        "address": {"line1": "1 Main Road", "city": "Durban", "postalCode": "4001"},
    }
    order = await place(world, body)
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "pending", done
    assert "rica" in done["failureReason"].lower()
    assert "A1234567" not in str(done)

    corrected = await world.orders.api.patch(
        f"/productOrder/{order['id']}",
        headers={**world.orders.client(), "Content-Type": "application/merge-patch+json"},
        json={"customer": {**body["customer"], "passportCountry": "MZ"}},
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["state"] == "inProgress"
    finished = await world.order_state(order["id"], until=FINAL - {"pending"} | {"completed"})
    assert finished["state"] == "completed", finished
    again = await world.orders.api.patch(
        f"/productOrder/{order['id']}",
        headers={**world.orders.client(), "Content-Type": "application/merge-patch+json"},
        json={"customer": body["customer"]},
    )
    assert again.status_code == 409


async def test_a_partner_outage_fails_orders_fast_and_recovery_lets_new_ones_through(provisioning):
    world = provisioning
    await world.simulators.put("/admin/faults/payments", json={"outage": True})
    order = await place(world, NEW_PSIM)
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "failed"
    assert done["failedStep"] == "authorise_payment"
    await world.simulators.delete("/admin/faults/payments")
    await asyncio.sleep(1.2)  # the circuit's open period passes
    again = await place(world, NEW_PSIM)
    assert (await world.order_state(again["id"], until=FINAL))["state"] == "completed"


async def progress_of(world, order_id: str) -> dict:
    rows = await fetch(world, "SELECT progress FROM order_items WHERE order_id = $1", order_id)
    progress = rows[0]["progress"]
    return json.loads(progress) if isinstance(progress, str) else progress


async def test_a_number_is_ported_in_and_the_line_activates_on_it(provisioning):
    world = provisioning
    await world.simulators.put("/admin/mno/port-in", json={"delaySeconds": 2})
    body = copy.deepcopy(NEW_PSIM)
    body["productOrderItem"][0]["portInMsisdn"] = "082 123 4567"
    order = await place(world, body)
    while_porting = await world.order_state(order["id"], until={"inProgress"}, within=5)
    assert while_porting["state"] == "inProgress"
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "completed", done
    line = await line_of(world, order["id"])
    assert line["msisdn"] == "+27821234567"
    progress = await progress_of(world, order["id"])
    assert "reserve_number" not in progress["done"]
    assert progress["done"][:3] == ["authorise_payment", "start_port_in", "await_port_in"]
    port_in = (
        await world.simulators.get(f"/mno/v1/port-ins/{progress['results']['port_in_id']}")
    ).json()
    assert port_in["status"] == "completed"
    at_operator = (
        await world.simulators.get(f"/mno/v1/subscriptions/{line['partner_subscription_id']}")
    ).json()
    assert at_operator["msisdn"] == "+27821234567"
    assert at_operator["status"] == "active"


async def test_a_port_in_the_donor_refuses_fails_the_order_and_voids_the_payment(provisioning):
    world = provisioning
    body = copy.deepcopy(NEW_PSIM)
    body["productOrderItem"][0]["portInMsisdn"] = "+27821239999"  # the donor refuses it
    order = await place(world, body)
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "failed", done
    assert done["failedStep"] == "await_port_in"
    assert "donor network refused" in done["failureReason"]
    progress = await progress_of(world, order["id"])
    assert progress["undone"] == ["cancel_port_in", "void_payment"]
    payment = (
        await world.simulators.get(f"/payments/v1/payments/{progress['results']['payment_id']}")
    ).json()
    assert payment["status"] == "voided"
    assert await line_of(world, order["id"]) == {}


async def test_a_ported_number_is_given_up_when_a_later_step_fails_for_good(provisioning):
    world = provisioning
    await world.simulators.put("/admin/mno/port-in", json={"delaySeconds": 3600})
    # A later step fails for good, after the port-in finished: the port-in is withdrawn on undo.
    body = copy.deepcopy(NEW_PSIM)
    body["productOrderItem"][0]["portInMsisdn"] = "+27831234567"
    order = await place(world, body)
    await world.order_state(order["id"], until={"inProgress"}, within=5)
    await asyncio.sleep(1)
    await world.simulators.put(
        "/admin/faults/mno/register_rica", json={"errorRate": 1, "errorStatus": 503}
    )
    await world.simulators.post("/admin/clock/advance", json={"seconds": 3601})
    done = await world.order_state(order["id"], until={"failed"}, within=90)
    assert done["state"] == "failed", done
    assert done["failedStep"] == "register_rica"
    progress = await progress_of(world, order["id"])
    assert progress["undone"] == ["cancel_port_in", "void_payment"]
    port_in = (
        await world.simulators.get(f"/mno/v1/port-ins/{progress['results']['port_in_id']}")
    ).json()
    assert port_in["status"] == "cancelled"
    reservation = (
        await world.simulators.get(f"/mno/v1/msisdn-reservations/{port_in['reservationId']}")
    ).json()
    assert reservation["status"] == "released"


async def test_an_asynchronous_activation_is_awaited_and_a_failed_one_tried_again(provisioning):
    world = provisioning
    # The network answers 202 and finishes the activation a second later.
    await world.simulators.put("/admin/mno/activation", json={"delaySeconds": 1})
    order = await place(world, NEW_PSIM)
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "completed", done
    line = await line_of(world, order["id"])
    at_operator = (
        await world.simulators.get(f"/mno/v1/subscriptions/{line['partner_subscription_id']}")
    ).json()
    assert at_operator["status"] == "active"

    # Every activation fails at the network: tried again until the tries are spent, then undone.
    await world.simulators.put(
        "/admin/mno/activation", json={"delaySeconds": 0.2, "failureRate": 1}
    )
    doomed = await place(world, NEW_PSIM)
    failed = await world.order_state(doomed["id"], until=FINAL)
    assert failed["state"] == "failed", failed
    assert failed["failedStep"] == "activate"
    assert "rejected the activation" in failed["failureReason"]
    progress = await progress_of(world, doomed["id"])
    assert progress["results"]["activation_tries"] == world.settings.step_attempts
    assert progress["undone"] == ["release_number", "void_payment"]
    assert await line_of(world, doomed["id"]) == {}


async def test_a_step_saved_without_a_transaction_is_dropped_when_the_order_moved_on(orders):
    """Two workers on one order (a lease ran out, a work item came twice): each loads the order
    with its version and calls the partner with the same Idempotency-Key; only the first save
    lands, the second finds the order at another version and writes nothing, timer included."""
    from datetime import UTC, datetime, timedelta

    from mvno.orders.provisioning.store import AloneSteps

    response = await orders.api.post(
        "/productOrder",
        json=NEW_PSIM,
        headers={**orders.client(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]  # no worker runs here: the order stays acknowledged
    connection = await orders.database()
    try:
        # Placed with a timer, so that it is handed out again should its first work item never
        # be handled (the chaos test's workers, killed each time they held one, sent some to the
        # DLQ); the first step's save replaces it with its lease.
        placed_at = datetime.fromisoformat(response.json()["orderDate"])
        fallback = await connection.fetchval(
            "SELECT due_at FROM provisioning_timers WHERE order_id = $1", order_id
        )
        lease = timedelta(seconds=orders.settings.provisioning_visibility_seconds)
        assert fallback is not None
        assert abs(fallback - (placed_at + lease)) < timedelta(seconds=1)
        steps = AloneSteps(connection)
        first, version = await steps.load_order(order_id=order_id)
        second, same_version = await steps.load_order(order_id=order_id)
        assert same_version == version
        soon = datetime.now(UTC) + timedelta(seconds=30)
        first.items[0].progress = {"done": ["authorise_payment"], "results": {"payment_id": "p1"}}
        assert await steps.save_order(order=first, timer_due=soon, if_version=version)
        second.items[0].progress = {"done": ["authorise_payment"], "results": {"payment_id": "p2"}}
        later = soon + timedelta(hours=1)
        assert not await steps.save_order(order=second, timer_due=later, if_version=version)

        saved, newer = await steps.load_order(order_id=order_id)
        assert newer != version
        assert saved.items[0].progress["results"] == {"payment_id": "p1"}
        due = await connection.fetchval(
            "SELECT due_at FROM provisioning_timers WHERE order_id = $1", order_id
        )
        assert due == soon
        # Saving at the version it now has works again.
        assert await steps.save_order(order=saved, clear_timer=True, if_version=newer)
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM provisioning_timers WHERE order_id = $1", order_id
            )
            == 0
        )
    finally:
        await connection.close()


async def test_a_hub_registered_while_the_worker_runs_is_owed_the_states_it_moves_orders_to(
    provisioning,
):
    """The worker holds each client's hubs in memory (it reads them at every state change); a
    hub registered after it read them must still be owed the states of the next order."""
    world = provisioning
    first = await place(world, NEW_PSIM)
    assert (await world.order_state(first["id"], until=FINAL))["state"] == "completed"
    created = await world.orders.api.post(
        "/hub",
        headers=world.orders.client(),
        json={
            "callback": "http://127.0.0.1:9/hook",
            "query": "eventType=ProductOrderStateChangeEvent",
        },
    )
    assert created.status_code == 201, created.text
    hub_id = created.json()["id"]
    await asyncio.sleep(0.5)  # the registration's NOTIFY reaches the worker
    second = await place(world, NEW_PSIM)
    assert (await world.order_state(second["id"], until=FINAL))["state"] == "completed"
    rows = await fetch(
        world, "SELECT payload::text FROM webhook_deliveries WHERE subscription_id = $1", hub_id
    )
    states = [json.loads(row["payload"])["event"]["productOrder"] for row in rows]
    owed = {order["state"] for order in states if order["id"] == second["id"]}
    # acknowledged is owed by the API at intake; inProgress and completed by the worker
    assert owed == {"acknowledged", "inProgress", "completed"}, owed
    assert not [order for order in states if order["id"] == first["id"]]


async def test_a_due_timer_is_taken_by_one_look_only_and_moved_a_lease_ahead(orders):
    """Workers look at the timers at once: each due timer goes to one of them, and its order's
    timer moves on by a lease in the same statement (a worker dying with it leaves it due then)."""
    from datetime import UTC, datetime, timedelta

    from mvno.orders.provisioning.repository import TimersRepository

    response = await orders.api.post(
        "/productOrder",
        json=NEW_PSIM,
        headers={**orders.client(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]  # no worker runs here
    connections = [await orders.database() for _ in range(3)]
    try:
        await connections[0].execute(
            "UPDATE provisioning_timers SET due_at = now() - interval '1 second' "
            "WHERE order_id = $1",
            order_id,
        )
        at = datetime.now(UTC)
        lease_until = at + timedelta(seconds=30)
        taken = await asyncio.gather(
            *(
                TimersRepository(connection).take_due_timers(
                    at=at, lease_until=lease_until, limit=10
                )
                for connection in connections
            )
        )
        assert sorted(([due.order_id for due in t] for t in taken), key=len) == [
            [],
            [],
            [order_id],
        ]
        due = await connections[0].fetchval(
            "SELECT due_at FROM provisioning_timers WHERE order_id = $1", order_id
        )
        assert due == lease_until
        assert (
            await TimersRepository(connections[0]).take_due_timers(
                at=datetime.now(UTC), lease_until=lease_until, limit=10
            )
            == []
        )
    finally:
        for connection in connections:
            await connection.close()


async def test_a_worker_drops_the_timer_of_an_order_with_nothing_left_to_do(provisioning):
    """A timer that fires for a finished order (say, billing-sync's answer delivered again after
    the order completed) is taken up, finds nothing to do, and goes; it does not fire again
    every lease."""
    world = provisioning
    order = await place(world, NEW_PSIM)
    assert (await world.order_state(order["id"], until=FINAL))["state"] == "completed"
    timers = "SELECT due_at FROM provisioning_timers WHERE order_id = $1"
    assert await fetch(world, timers, order["id"]) == []
    connection = await world.orders.database()
    try:
        await connection.execute(
            "INSERT INTO provisioning_timers (order_id, due_at) VALUES ($1, now())", order["id"]
        )
    finally:
        await connection.close()
    for _ in range(100):
        if not await fetch(world, timers, order["id"]):
            break
        await asyncio.sleep(0.1)
    assert await fetch(world, timers, order["id"]) == []
    assert (await world.order_state(order["id"], until=FINAL))["state"] == "completed"


async def test_the_api_leaves_its_outbox_to_the_provisioning_workers(orders_as_deployed):
    """As deployed the API only serves: its events wait in the outbox until a worker relays them."""
    from mvno.orders.provisioning import worker

    world = orders_as_deployed
    order_id = (await place(world, NEW_PSIM))["id"]
    assert await world.events(within=2) == []
    [waiting] = await fetch(world, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert waiting[0] >= 2  # the order's state change and its first work item

    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(world.settings, stop))
    try:
        published = await world.events(within=15, until=1)
    finally:
        stop.set()
        await running
    assert any(event["data"].get("order_id") == order_id for event in published), published


# --- The saga's metrics, read through the in-memory reader after real orders ran ---------------


def total(reader, spec, **attributes) -> float:
    """A counter's sum (or a histogram's count) over the points with these attributes."""
    points = metric_points(reader, spec.name, **attributes)
    return sum(getattr(p, "count", None) or getattr(p, "value", 0) for p in points)


async def test_a_retried_step_counts_its_failures_retries_and_the_finished_order(
    provisioning, metric_reader
):
    world = provisioning
    step = {"step": "reserve_number", "partner": "network operator"}
    before = {
        "failures": total(metric_reader, catalog.SAGA_STEP_FAILURES, **step, retryable="true"),
        "retries": total(metric_reader, catalog.SAGA_RETRIES, **step),
        "succeeded": total(metric_reader, catalog.SAGA_STEP_DURATION, **step, outcome="succeeded"),
        "completed": total(metric_reader, catalog.SAGA_FINISHED, state="completed"),
        "timed": total(metric_reader, catalog.PROVISIONING_DURATION, state="completed"),
    }
    await world.simulators.put("/admin/faults/mno/reserve_number", json={"outage": True})
    order = await place(world, NEW_PSIM)
    deadline = asyncio.get_running_loop().time() + 30
    while total(metric_reader, catalog.SAGA_RETRIES, **step) < before["retries"] + 2:
        assert asyncio.get_running_loop().time() < deadline, "no retries counted"
        await asyncio.sleep(0.05)
    await world.simulators.delete("/admin/faults/mno/reserve_number")
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "completed", done

    failures = total(metric_reader, catalog.SAGA_STEP_FAILURES, **step, retryable="true")
    assert failures - before["failures"] >= 2
    succeeded = total(metric_reader, catalog.SAGA_STEP_DURATION, **step, outcome="succeeded")
    assert succeeded - before["succeeded"] == 1
    assert total(metric_reader, catalog.SAGA_FINISHED, state="completed") == before["completed"] + 1
    [timed] = metric_points(metric_reader, catalog.PROVISIONING_DURATION.name, state="completed")
    assert timed.count == before["timed"] + 1
    assert timed.max > 0, "the end-to-end time runs from the order's capture"


async def test_a_failed_order_counts_its_compensations_and_its_failure(provisioning, metric_reader):
    world = provisioning

    def undone(undo: str, partner: str) -> float:
        return total(
            metric_reader, catalog.SAGA_COMPENSATIONS, undo=undo, partner=partner, outcome="undone"
        )

    before = {
        "release": undone("release_number", "network operator"),
        "void": undone("void_payment", "bank"),
        "failed": total(metric_reader, catalog.SAGA_FINISHED, state="failed"),
        "step": total(
            metric_reader,
            catalog.SAGA_STEP_DURATION,
            step="activate",
            partner="network operator",
            outcome="failed",
        ),
    }
    await world.simulators.put(
        "/admin/faults/mno/activate_subscription", json={"errorRate": 1, "errorStatus": 503}
    )
    order = await place(world, NEW_PSIM)
    done = await world.order_state(order["id"], until={"failed"})
    assert done["state"] == "failed", done

    assert undone("release_number", "network operator") == before["release"] + 1
    assert undone("void_payment", "bank") == before["void"] + 1
    assert total(metric_reader, catalog.SAGA_FINISHED, state="failed") == before["failed"] + 1
    failed_step = total(
        metric_reader,
        catalog.SAGA_STEP_DURATION,
        step="activate",
        partner="network operator",
        outcome="failed",
    )
    assert failed_step == before["step"] + 1


async def test_a_partner_outage_opens_its_circuit_and_recovery_closes_it(
    provisioning, metric_reader
):
    world = provisioning

    def circuit() -> float | None:
        points = metric_points(metric_reader, catalog.CIRCUIT_STATE.name, partner="bank")
        return points[0].value if points else None

    await world.simulators.put("/admin/faults/payments", json={"outage": True})
    order = await place(world, NEW_PSIM)
    assert (await world.order_state(order["id"], until=FINAL))["state"] == "failed"
    assert circuit() == 2, "the bank's circuit reads open"
    await world.simulators.delete("/admin/faults/payments")
    await asyncio.sleep(1.2)  # the circuit's open period passes
    again = await place(world, NEW_PSIM)
    assert (await world.order_state(again["id"], until=FINAL))["state"] == "completed"
    assert circuit() == 0, "the bank's circuit reads closed"


async def test_orders_waiting_on_the_customer_are_counted_by_state(provisioning, metric_reader):
    world = provisioning
    body = copy.deepcopy(NEW_PSIM)
    body["customer"] = {
        **body["customer"],
        "idType": "passport",
        "idNumber": "A1234567",
        "passportCountry": "XX",
        "dateOfBirth": "1990-05-01",
    }
    order = await place(world, body)
    assert (await world.order_state(order["id"], until=FINAL))["state"] == "pending"

    pool = await StatementPool.open(asyncpg_dsn(world.settings.database_url), size=1)
    try:
        await measure_open_orders(pool)
    finally:
        await pool.close()
    counts = {
        p.attributes["state"]: p.value
        for p in metric_points(metric_reader, catalog.ORDERS_BY_STATE.name)
    }
    assert counts == {"acknowledged": 0, "inProgress": 0, "pending": 1}


async def test_steps_resumed_from_a_timer_continue_the_trace_of_the_orders_post(
    provisioning, finished_spans
):
    """A step retried after its backoff is taken up from the order's timer, by whichever worker:
    it runs in a span whose parent is the POST that placed the order (the trace context saved
    with the order), so the whole saga is one trace, every span naming the order."""
    world = provisioning
    await world.simulators.put("/admin/faults/mno/reserve_number", json={"outage": True})
    with trace.get_tracer("test").start_as_current_span("channel"):  # sends its trace header
        order = await place(world, NEW_PSIM)
    deadline = asyncio.get_running_loop().time() + 30
    while ((await progress_of(world, order["id"])) or {}).get("attempts", 0) < 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    await world.simulators.delete("/admin/faults/mno/reserve_number")
    done = await world.order_state(order["id"], until=FINAL)
    assert done["state"] == "completed", done

    spans = [
        span
        for span in finished_spans.get_finished_spans()
        if span.attributes.get("mvno.order_id") == order["id"]
    ]
    (post,) = [
        span for span in spans if span.name.startswith("POST ") and "productOrder" in span.name
    ]
    assert {span.context.trace_id for span in spans} == {post.context.trace_id}
    resumed = [span for span in spans if span.name == "orders.provisioning resume"]
    assert resumed
    assert {span.parent.span_id for span in resumed if span.parent} == {post.context.span_id}
    tries = [span for span in spans if span.name == "step reserve_number"]
    assert [span.attributes["mvno.step.try"] for span in tries][:3] == [1, 2, 3]
    assert tries[0].status.status_code is StatusCode.ERROR
    assert tries[-1].status.status_code is not StatusCode.ERROR
    # The retries ran from the timer: under a resumed span, not the work item's.
    assert any(span.parent.span_id in {r.context.span_id for r in resumed} for span in tries[1:])
    # The simulators (served in this process) handled the calls in the same trace.
    assert any(span.name == "POST /mno/v1/msisdn-reservations" for span in spans)


async def test_a_worker_with_nothing_to_do_makes_no_spans(provisioning, finished_spans):
    """Timers, the outbox relay, the consumer and the webhook sender keep looking for work; a
    look that finds none is no trace (nor any span)."""
    await asyncio.sleep(1.0)  # the worker has started and found its queues
    before = len(finished_spans.get_finished_spans())
    await asyncio.sleep(2.0)  # ten looks at the timers, twenty at the outbox, two receives
    idle = finished_spans.get_finished_spans()[before:]
    assert [(span.name, span.kind) for span in idle] == []
