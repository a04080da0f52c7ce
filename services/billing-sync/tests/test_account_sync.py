"""Billing accounts follow subscriptions on the billing platform (the simulator, over HTTP)."""

from __future__ import annotations

import asyncio

from mvno.common.events.orders import (
    SubscriptionSuspended,
    SubscriptionTariffChanged,
    SubscriptionTerminated,
)

from .conftest import BillingWorld


async def billed(world: BillingWorld, billing_subscription_id: str) -> dict:
    answer = await world.simulators.get(f"/billing/v1/subscriptions/{billing_subscription_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


async def line(world: BillingWorld, subscription_id: str) -> dict:
    connection = await world.database()
    try:
        row = await connection.fetchrow(
            "SELECT * FROM subscriptions WHERE subscription_id = $1", subscription_id
        )
    finally:
        await connection.close()
    assert row is not None
    return dict(row)


async def test_activation_opens_an_account_bills_the_line_and_announces_it(world: BillingWorld):
    activated = await world.activate(offering_id="contract-10gb", order_id="order-42")
    await world.run_sync_until_idle()

    copy = await line(world, activated.subscription_id)
    remote = await billed(world, copy["billing_subscription_id"])
    assert remote["msisdn"] == activated.msisdn
    assert remote["tariffCode"] == "CONTRACT-10GB"
    assert remote["monthlyChargeCents"] == 39900
    assert remote["externalRef"] == activated.subscription_id
    assert remote["status"] == "active"
    [created] = await world.published("billing.account.created.v1")
    assert created["data"]["subscription_id"] == activated.subscription_id
    assert created["data"]["order_id"] == "order-42"
    assert (
        created["data"]["billing_account_id"] == copy["billing_account_id"] == remote["accountId"]
    )


async def test_a_second_line_of_the_same_customer_joins_its_open_account(world: BillingWorld):
    first = await world.activate(customer_id="cust-7")
    second = await world.activate(customer_id="cust-7")
    await world.run_sync_until_idle()
    a, b = await line(world, first.subscription_id), await line(world, second.subscription_id)
    assert a["billing_account_id"] == b["billing_account_id"]
    assert a["billing_subscription_id"] != b["billing_subscription_id"]
    assert len(await world.published("billing.account.created.v1")) == 2


async def test_a_redelivered_activation_bills_the_line_once(world: BillingWorld):
    activated = await world.activate()
    await world.deliver(activated)
    await world.run_sync_until_idle()
    account = (await line(world, activated.subscription_id))["billing_account_id"]
    remote = (await world.simulators.get(f"/billing/v1/accounts/{account}")).json()
    assert len(remote["subscriptions"]) == 1
    assert len(await world.published("billing.account.created.v1")) == 1


async def test_failures_are_retried_until_the_billing_platform_answers(world: BillingWorld):
    # First the billing platform answers 503; then it opens the account and bills the line but
    # both answers are lost: the retries with the same Idempotency-Keys must still leave exactly
    # one account with one line.
    await world.fault("billing", errorRate=1, errorStatus=503)
    activated = await world.activate()
    await world.sync.run_due()
    await world.simulators.delete("/admin/faults/billing")
    await world.fault("billing/create_account", lostResponseRate=1, timeoutSeconds=2)
    await world.fault("billing/create_subscription", lostResponseRate=1, timeoutSeconds=2)
    for _ in range(3):
        await asyncio.sleep(0.1)  # the backoff
        await world.sync.run_due()
    await world.simulators.delete("/admin/faults")
    await world.run_sync_until_idle()
    connection = await world.database()
    try:
        attempts = await connection.fetchval("SELECT attempts FROM account_operations")
    finally:
        await connection.close()
    assert attempts >= 3  # the 503, at least one lost answer, then success

    copy = await line(world, activated.subscription_id)
    remote = await world.simulators.get(f"/billing/v1/accounts/{copy['billing_account_id']}")
    assert [s["externalRef"] for s in remote.json()["subscriptions"]] == [activated.subscription_id]
    assert len(await world.published("billing.account.created.v1")) == 1
    assert await world.published("billing.account.sync_failed.v1") == []


async def test_when_retries_are_spent_the_failure_is_published(world: BillingWorld):
    await world.fault("billing", outage=True)
    activated = await world.activate(order_id="order-9")
    await world.run_sync_until_idle()

    [failed] = await world.published("billing.account.sync_failed.v1")
    assert failed["data"]["subscription_id"] == activated.subscription_id
    assert failed["data"]["operation"] == "create"
    assert failed["data"]["order_id"] == "order-9"
    assert "unavailable" in failed["data"]["reason"] or "503" in failed["data"]["reason"]
    assert await world.published("billing.account.created.v1") == []
    connection = await world.database()
    try:
        attempts = await connection.fetchval("SELECT attempts FROM account_operations")
    finally:
        await connection.close()
    assert attempts == world.settings.sync_attempts


async def test_tariff_change_and_termination_reach_the_billing_platform(world: BillingWorld):
    activated = await world.activate(offering_id="starter-psim")
    sid = activated.subscription_id
    common = {"subscription_id": sid, "customer_id": "cust-1"}
    # Out of order: the termination arrives before the tariff change it follows.
    await world.deliver(SubscriptionTerminated(**common, sequence=4))
    await world.deliver(SubscriptionSuspended(**common, sequence=2, reason="customer_request"))
    await world.deliver(
        SubscriptionTariffChanged(
            **common,
            sequence=3,
            offering_id="contract-10gb",
            previous_offering_id="starter-psim",
            payment_type="postpaid",
        )
    )
    await world.run_sync_until_idle()

    copy = await line(world, sid)
    assert copy["status"] == "terminated"
    assert copy["offering_id"] == "contract-10gb"
    remote = await billed(world, copy["billing_subscription_id"])
    assert remote["status"] == "ended"
    assert [p["tariffCode"] for p in remote["tariffHistory"]] == ["STARTER-PSIM", "CONTRACT-10GB"]


async def test_changes_wait_for_an_activation_that_arrives_late(world: BillingWorld):
    sid = "sub-late"
    await world.deliver(
        SubscriptionTerminated(subscription_id=sid, customer_id="cust-1", sequence=2)
    )
    await world.sync.run_due()
    await world.activate(subscription_id=sid)
    await world.run_sync_until_idle()
    copy = await line(world, sid)
    assert copy["status"] == "terminated"
    assert (await billed(world, copy["billing_subscription_id"]))["status"] == "ended"
