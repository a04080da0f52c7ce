"""Reconciliation finds and repairs each kind of drift against the billing platform."""

from __future__ import annotations

from typing import Any

from mvno.billing_sync.reconcile import reconcile
from mvno.common import metric_catalog as catalog
from mvno.common.events.orders import SubscriptionTerminated
from mvno.devstack.testing import metric_points

from .conftest import BillingWorld, new_msisdn


async def line(world: BillingWorld, subscription_id: str) -> dict[str, Any]:
    connection = await world.database()
    try:
        return dict(
            await connection.fetchrow(
                "SELECT * FROM subscriptions WHERE subscription_id = $1", subscription_id
            )
        )
    finally:
        await connection.close()


def drift(reader: Any) -> dict[str, float]:
    """The drift gauge as the last reconciliation left it, by kind."""
    return {
        p.attributes["drift"]: p.value
        for p in metric_points(reader, catalog.RECONCILIATION_DRIFT.name)
    }


async def test_missing_extra_and_wrong_tariff_are_found_repaired_and_gone_next_time(
    world: BillingWorld, metric_reader: Any
):
    sim = world.simulators
    in_step = await world.activate(customer_id="c-ok")
    lost_bill = await world.activate(customer_id="c-missing")
    retariffed = await world.activate(customer_id="c-tariff", offering_id="starter-psim")
    closed = await world.activate(customer_id="c-closed")
    await world.run_sync_until_idle()

    # Drift, as lost calls or hands on the billing platform would leave it:
    # a live line no longer billed ...
    billed = (await line(world, lost_bill.subscription_id))["billing_subscription_id"]
    assert (await sim.post(f"/billing/v1/subscriptions/{billed}/end")).is_success
    # ... a line billed at another tariff ...
    billed = (await line(world, retariffed.subscription_id))["billing_subscription_id"]
    answer = await sim.post(
        f"/billing/v1/subscriptions/{billed}/tariff",
        json={"tariffCode": "SOMETHING_ELSE", "monthlyChargeCents": 100},
    )
    assert answer.is_success
    # ... a terminated line still billed (its end call was lost: the outage outlived the retries) ...
    await world.fault("billing", outage=True)
    await world.deliver(
        SubscriptionTerminated(
            subscription_id=closed.subscription_id, customer_id="c-closed", sequence=2
        )
    )
    await world.run_sync_until_idle()
    await sim.delete("/admin/faults")
    await world.billing_reachable()
    # ... and a line the platform never had.
    account = (
        await sim.post("/billing/v1/accounts", json={"customerRef": "c-ghost", "name": "ghost"})
    ).json()
    ghost = (
        await sim.post(
            f"/billing/v1/accounts/{account['id']}/subscriptions",
            json={
                "msisdn": new_msisdn(),
                "tariffCode": "GHOST",
                "monthlyChargeCents": 1,
                "externalRef": "sub-ghost",
            },
        )
    ).json()

    report = await reconcile(world.sync._unit_of_work, world.partners.billing)
    found = {(f["drift"], f["subscription_id"]): f["outcome"] for f in report["findings"]}
    assert found == {
        ("missing", lost_bill.subscription_id): "repaired",
        ("wrong_tariff", retariffed.subscription_id): "repaired",
        ("extra", closed.subscription_id): "repaired",
        ("extra", "sub-ghost"): "repaired",
    }
    assert in_step.subscription_id not in {f["subscription_id"] for f in report["findings"]}
    assert drift(metric_reader) == {"missing": 1, "extra": 2, "wrong_tariff": 1}

    # Repaired on the billing platform:
    rebilled = await line(world, lost_bill.subscription_id)
    remote = await sim.get(f"/billing/v1/subscriptions/{rebilled['billing_subscription_id']}")
    assert remote.json()["status"] == "active"
    billed = (await line(world, retariffed.subscription_id))["billing_subscription_id"]
    remote = await sim.get(f"/billing/v1/subscriptions/{billed}")
    assert remote.json()["tariffCode"] == "STARTER-PSIM"
    billed = (await line(world, closed.subscription_id))["billing_subscription_id"]
    assert (await sim.get(f"/billing/v1/subscriptions/{billed}")).json()["status"] == "ended"
    assert (await sim.get(f"/billing/v1/subscriptions/{ghost['id']}")).json()["status"] == "ended"
    # The repaired account is announced (with no order: reconciliation made it).
    created = [e["data"] for e in await world.published("billing.account.created.v1")]
    assert [
        c["order_id"] for c in created if c["subscription_id"] == lost_bill.subscription_id
    ] == [
        "order-1",
        None,
    ]

    again = await reconcile(world.sync._unit_of_work, world.partners.billing)
    assert again["findings"] == []
    assert drift(metric_reader) == {"missing": 0, "extra": 0, "wrong_tariff": 0}
    connection = await world.database()
    try:
        runs = await connection.fetchval("SELECT count(*) FROM reconciliation_runs")
    finally:
        await connection.close()
    assert runs == 2


async def test_a_line_with_an_operation_in_flight_is_left_to_it(world: BillingWorld):
    pending = await world.activate()  # its create operation has not run yet
    report = await reconcile(world.sync._unit_of_work, world.partners.billing)
    assert report["findings"] == [
        {
            "drift": "missing",
            "subscription_id": pending.subscription_id,
            "billing_subscription_id": None,
            "detail": "live line not billed",
            "outcome": "left to its pending operation",
        }
    ]
    await world.run_sync_until_idle()
    assert len(await world.published("billing.account.created.v1")) == 1
