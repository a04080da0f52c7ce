"""The customer's screens from the read model, kept from real events on the bus; every object
answered only to its owner; degraded, never failing, answers when billing-sync or catalog fail."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from mvno.common.events.billing import UsageRecorded
from mvno.common.events.orders import (
    OrderItemProgress,
    OrderStateChanged,
    SubscriptionActivated,
    SubscriptionResumed,
    SubscriptionSuspended,
)
from mvno.devstack.testing import assert_problem

from .conftest import API, PortalWorld, bucket

ALICE = "customer-alice"
BOB = "customer-bob"


def activated(
    subscription_id: str,
    customer_id: str,
    msisdn: str,
    *,
    sim_kind: str = "eSIM",
    sequence: int = 1,
) -> SubscriptionActivated:
    return SubscriptionActivated(
        subscription_id=subscription_id,
        customer_id=customer_id,
        sequence=sequence,
        order_id=f"order-of-{subscription_id}",
        msisdn=msisdn,
        offering_id="starter-esim",
        payment_type="prepaid",
        sim_kind=sim_kind,  # type: ignore[arg-type]
    )


def order_event(
    order_id: str, customer_id: str, state: str, sequence: int, *, line: str | None = None
) -> OrderStateChanged:
    return OrderStateChanged(
        order_id=order_id,
        customer_id=customer_id,
        channel="app",
        state=state,  # type: ignore[arg-type]
        sequence=sequence,
        items=(
            OrderItemProgress(
                item_id="1",
                action="add",
                offering_id="starter-esim",
                subscription_id=line,
                state=state,  # type: ignore[arg-type]
            ),
        ),
    )


async def lines_of(portal: PortalWorld, customer: str) -> dict[str, Any]:
    answer = await portal.api.get(f"{API}/lines", headers=portal.customer(customer))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def two_customers_with_a_line_each(portal: PortalWorld) -> None:
    portal.billing.buckets["line-a1"] = [
        bucket("line-a1", "airtime", 42.5, 50, "ZAR"),
        bucket("line-a1", "data", 800, 1024, "MB", name="1 GB data bundle"),
        bucket("line-a1", "voice", 0, 100, "minute", status="depleted"),
    ]
    await portal.publish(activated("line-a1", ALICE, "+27820000001"), source="orders")
    await portal.publish(activated("line-b1", BOB, "+27820000002"), source="orders")
    await portal.publish(order_event("order-a1", ALICE, "acknowledged", 1), source="orders")
    await portal.publish(order_event("order-b1", BOB, "acknowledged", 1), source="orders")
    await portal.eventually(
        lambda: lines_of(portal, BOB),
        lambda body: [line["id"] for line in body["lines"]] == ["line-b1"],
    )
    await portal.eventually(
        lambda: portal.api.get(f"{API}/orders", headers=portal.customer(ALICE)),
        lambda answer: answer.json()["total"] == 1,
    )


async def test_my_lines_show_each_line_with_its_live_balance(portal: PortalWorld) -> None:
    await two_customers_with_a_line_each(portal)

    body = await lines_of(portal, ALICE)

    assert body["degraded"] is False
    assert body["missing"] == []
    [line] = body["lines"]
    assert line["id"] == "line-a1"
    assert line["msisdn"] == "+27820000001"
    assert line["status"] == "active"
    assert line["simKind"] == "eSIM"
    balance = line["balance"]
    assert balance["status"] == "current"
    assert balance["airtime"] == {"amount": 42.5, "currency": "ZAR"}
    assert balance["dataMB"] == 800
    assert balance["voiceMinutes"] == 0  # the depleted bucket gives nothing
    assert {a["name"] for a in balance["allowances"]} == {"1 GB data bundle", "voice"}


async def test_another_customers_objects_are_not_found(portal: PortalWorld) -> None:
    await two_customers_with_a_line_each(portal)
    bob = portal.customer(BOB)
    calls_before = portal.billing.calls

    for path in (
        "/lines/line-a1",
        "/lines/line-a1/usage",
        "/lines/line-a1/esim",
        "/orders/order-a1",
        "/orders/order-a1/progress",
    ):
        assert_problem(await portal.api.get(API + path, headers=bob), 404, "not-found")
    assert_problem(
        await portal.api.post(f"{API}/lines/line-a1/suspend", headers=bob), 404, "not-found"
    )
    assert_problem(
        await portal.api.post(
            f"{API}/orders",
            headers=bob,
            json={"kind": "bundle", "offeringId": "data-1gb-30d", "subscriptionId": "line-a1"},
        ),
        404,
        "not-found",
    )
    # Bob's lists hold only his own; nothing of Alice's was even asked of billing-sync for him.
    assert [
        o["id"] for o in (await portal.api.get(f"{API}/orders", headers=bob)).json()["orders"]
    ] == ["order-b1"]
    assert [line["id"] for line in (await lines_of(portal, BOB))["lines"]] == ["line-b1"]
    assert portal.billing.calls == calls_before
    # And the same paths do answer their owner.
    alice = portal.customer(ALICE)
    assert (await portal.api.get(f"{API}/lines/line-a1", headers=alice)).status_code == 200
    assert (await portal.api.get(f"{API}/orders/order-a1", headers=alice)).status_code == 200


async def test_lifecycle_events_out_of_order_end_in_the_newest_state(portal: PortalWorld) -> None:
    # SQS reorders: the suspension (2) arrives before the activation (1) it follows.
    await portal.publish(
        SubscriptionSuspended(
            subscription_id="line-x", customer_id=ALICE, sequence=2, reason="lost_or_stolen"
        ),
        source="orders",
    )
    body = await portal.eventually(
        lambda: lines_of(portal, ALICE), lambda body: len(body["lines"]) == 1
    )
    assert body["lines"][0]["status"] == "suspended"
    await portal.publish(activated("line-x", ALICE, "+27820000009"), source="orders")
    body = await portal.eventually(
        lambda: lines_of(portal, ALICE), lambda body: body["lines"][0]["msisdn"] is not None
    )
    assert body["lines"][0]["status"] == "suspended"  # the older event filled in, did not revive
    assert body["lines"][0]["msisdn"] == "+27820000009"
    await portal.publish(
        SubscriptionResumed(subscription_id="line-x", customer_id=ALICE, sequence=3),
        source="orders",
    )
    await portal.eventually(
        lambda: lines_of(portal, ALICE), lambda body: body["lines"][0]["status"] == "active"
    )


async def test_order_progress_is_pushed_live_until_completed(portal: PortalWorld) -> None:
    alice = portal.customer(ALICE)
    await portal.publish(order_event("order-live", ALICE, "acknowledged", 1), source="orders")
    await portal.eventually(
        lambda: portal.api.get(f"{API}/orders/order-live", headers=alice),
        lambda answer: answer.status_code == 200,
    )
    states: list[str] = []

    async def watch() -> None:
        async with portal.api.stream(
            "GET", f"{API}/orders/order-live/progress", headers=alice, timeout=30
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    view = json.loads(line.removeprefix("data:").strip())
                    states.append(view["state"])
                    if len(states) == 1:
                        seen_first.set()

    seen_first = asyncio.Event()
    watching = asyncio.create_task(watch())
    await asyncio.wait_for(seen_first.wait(), 10)
    await portal.publish(order_event("order-live", ALICE, "inProgress", 2), source="orders")
    await portal.eventually(lambda: asyncio.sleep(0, states), lambda s: "inProgress" in s)
    await portal.publish(
        order_event("order-live", ALICE, "completed", 3, line="line-new"), source="orders"
    )
    await asyncio.wait_for(watching, 20)  # the stream ends by itself once the order is done
    assert states == ["acknowledged", "inProgress", "completed"]
    # A late duplicate of an older state changes nothing.
    await portal.publish(order_event("order-live", ALICE, "inProgress", 2), source="orders")
    await asyncio.sleep(1)
    order = (await portal.api.get(f"{API}/orders/order-live", headers=alice)).json()
    assert order["state"] == "completed"
    assert order["done"] is True
    assert order["title"] == "New line"


async def test_balances_show_the_last_copy_marked_stale_when_billing_sync_is_down(
    portal: PortalWorld,
) -> None:
    await two_customers_with_a_line_each(portal)
    assert (await lines_of(portal, ALICE))["lines"][0]["balance"]["status"] == "current"
    # Usage moved the balance: the copy must be asked for again, but billing-sync is down.
    await portal.stop_billing()
    await portal.publish(
        UsageRecorded(
            subscription_id="line-a1",
            customer_id=ALICE,
            batch_id="batch-1",
            source="usage_file",
            usage_from="2026-11-28T08:00:00Z",  # type: ignore[arg-type]
            usage_to="2026-11-28T09:00:00Z",  # type: ignore[arg-type]
            record_count=3,
            data_bytes=1_000_000,
            voice_seconds=0,
            sms_count=0,
        ),
        source="billing",
    )
    body = await portal.eventually(
        lambda: lines_of(portal, ALICE), lambda body: body["degraded"] is True
    )
    assert body["missing"] == ["balances"]
    balance = body["lines"][0]["balance"]
    assert balance["status"] == "stale"
    assert balance["asOf"] is not None
    assert balance["airtime"]["amount"] == 42.5  # the last known figures, still shown
    # Carol's line arrives while billing-sync is down: it says so instead of failing.
    await portal.publish(activated("line-c1", "customer-carol", "+27820000003"), source="orders")
    body = await portal.eventually(
        lambda: lines_of(portal, "customer-carol"), lambda body: len(body["lines"]) == 1
    )
    assert body["degraded"] is True
    assert body["lines"][0]["balance"]["status"] == "unavailable"


async def test_a_slow_billing_sync_does_not_hold_the_screen(portal: PortalWorld) -> None:
    portal.billing.delay_seconds = 6  # three times the portal's deadline for it
    await portal.publish(activated("line-c1", "customer-carol", "+27820000003"), source="orders")
    body = await portal.eventually(
        lambda: lines_of(portal, "customer-carol"), lambda body: len(body["lines"]) == 1
    )
    assert body["degraded"] is True
    assert body["lines"][0]["balance"]["status"] == "unavailable"
    assert body["lines"][0]["msisdn"] == "+27820000003"
    # Left alone for a few seconds after that: the next screens answer from the read model at
    # once instead of each waiting out the deadline again.
    calls = portal.billing.calls
    portal.billing.delay_seconds = 0
    again = await lines_of(portal, "customer-carol")
    assert again["lines"][0]["balance"]["status"] == "unavailable"
    assert portal.billing.calls == calls
    # A degraded answer is never the one kept: once billing-sync is asked again, it shows.
    portal.billing.buckets["line-c1"] = [bucket("line-c1", "airtime", 5, 5, "ZAR")]
    recovered = await portal.eventually(
        lambda: lines_of(portal, "customer-carol"), lambda body: body["degraded"] is False
    )
    assert recovered["lines"][0]["balance"]["status"] == "current"
    assert recovered["lines"][0]["balance"]["airtime"]["amount"] == 5


def usage_of(subscription_id: str, customer_id: str, batch_id: str) -> UsageRecorded:
    return UsageRecorded(
        subscription_id=subscription_id,
        customer_id=customer_id,
        batch_id=batch_id,
        source="usage_file",
        usage_from="2026-11-28T08:00:00Z",  # type: ignore[arg-type]
        usage_to="2026-11-28T09:00:00Z",  # type: ignore[arg-type]
        record_count=1,
        data_bytes=1_000_000,
        voice_seconds=0,
        sms_count=0,
    )


async def test_an_event_about_a_line_shows_on_the_next_screen_of_its_owner(
    portal: PortalWorld,
) -> None:
    # The screen is asked again and again (as a portal refreshing it does): what an event
    # changes must show long before the balances' copy (30 s) would age by itself.
    await two_customers_with_a_line_each(portal)
    before = await lines_of(portal, ALICE)
    assert before["lines"][0]["balance"]["airtime"]["amount"] == 42.5
    assert await lines_of(portal, ALICE) == before
    bob_before = await lines_of(portal, BOB)

    portal.billing.buckets["line-a1"] = [bucket("line-a1", "airtime", 17.25, 50, "ZAR")]
    await portal.publish(usage_of("line-a1", ALICE, "batch-7"), source="billing")
    body = await portal.eventually(
        lambda: lines_of(portal, ALICE),
        lambda body: body["lines"][0]["balance"]["airtime"]["amount"] == 17.25,
        within=10,
    )
    assert body["lines"][0]["balance"]["status"] == "current"
    assert body["degraded"] is False

    await portal.publish(
        SubscriptionSuspended(
            subscription_id="line-a1", customer_id=ALICE, sequence=2, reason="lost_or_stolen"
        ),
        source="orders",
    )
    await portal.eventually(
        lambda: lines_of(portal, ALICE),
        lambda body: body["lines"][0]["status"] == "suspended",
        within=10,
    )
    await portal.publish(activated("line-a2", ALICE, "+27820000011", sequence=1), source="orders")
    await portal.eventually(
        lambda: lines_of(portal, ALICE),
        lambda body: [line["id"] for line in body["lines"]] == ["line-a1", "line-a2"],
        within=10,
    )
    assert await lines_of(portal, BOB) == bob_before  # nothing of Alice's reached Bob


@pytest.mark.parametrize("portal_overrides", [{"balance_fresh_seconds": 2}])
async def test_balances_shown_never_outlive_their_freshness(portal: PortalWorld) -> None:
    # No event says so (billing-sync publishes none when a bundle's buckets open): the screen
    # still shows billing-sync's new figures once the copy ages, however often it was viewed.
    await two_customers_with_a_line_each(portal)
    assert (await lines_of(portal, ALICE))["lines"][0]["balance"]["airtime"]["amount"] == 42.5
    portal.billing.buckets["line-a1"] = [bucket("line-a1", "airtime", 99, 100, "ZAR")]
    body = await portal.eventually(
        lambda: lines_of(portal, ALICE),
        lambda body: body["lines"][0]["balance"]["airtime"]["amount"] == 99,
        within=10,
    )
    assert body["lines"][0]["balance"]["status"] == "current"


async def test_usage_per_day_and_its_copy_when_billing_sync_is_down(portal: PortalWorld) -> None:
    await two_customers_with_a_line_each(portal)
    portal.billing.usage["line-a1"] = [
        {
            "id": "line-a1:2026-11-27",
            "usageDate": "2026-11-27",
            "status": "rated",
            "product": {"id": "line-a1"},
            "usageCharacteristic": [
                {"name": "dataBytes", "value": 52_428_800},
                {"name": "voiceSeconds", "value": 150},
                {"name": "smsCount", "value": 2},
            ],
            "ratedProductUsage": [{"taxIncludedRatingAmount": {"unit": "ZAR", "value": 1.58}}],
        }
    ]
    alice = portal.customer(ALICE)
    path = f"{API}/lines/line-a1/usage?from=2026-11-22&to=2026-11-28"
    body = (await portal.api.get(path, headers=alice)).json()
    assert body["status"] == "current"
    assert body["days"] == [
        {
            "date": "2026-11-27",
            "dataMB": 50.0,
            "voiceMinutes": 2.5,
            "sms": 2,
            "charge": {"amount": 1.58, "currency": "ZAR"},
        }
    ]
    await portal.stop_billing()
    stale = (await portal.api.get(path, headers=alice)).json()
    assert stale["status"] == "stale"
    assert stale["days"] == body["days"]
    other = (
        await portal.api.get(
            f"{API}/lines/line-a1/usage?from=2026-10-01&to=2026-10-07", headers=alice
        )
    ).json()
    assert other["status"] == "unavailable"
    assert other["days"] == []
    assert_problem(
        await portal.api.get(
            f"{API}/lines/line-a1/usage?from=2026-11-28&to=2026-11-01", headers=alice
        ),
        422,
        "validation-error",
    )


async def test_offers_on_this_channel_from_catalog(portal: PortalWorld) -> None:
    body = (await portal.api.get(f"{API}/offers", headers=portal.customer(ALICE))).json()
    assert body["status"] == "current"
    by_id = {offer["id"]: offer for offer in body["offers"]}
    assert by_id["starter-esim"]["purchase"] == "line"
    assert by_id["starter-esim"]["simKinds"] == ["eSIM"]
    assert by_id["data-5gb-30d"]["purchase"] == "bundle"
    assert by_id["data-5gb-30d"]["allowance"]["dataMB"] == 5120
    assert by_id["airtime-r50"]["purchase"] == "airtime"
    assert "contract-40gb" not in by_id  # not sold on the app


async def test_purchases_refused_before_orders_and_orders_down_is_a_503(
    portal: PortalWorld,
) -> None:
    await two_customers_with_a_line_each(portal)
    alice = portal.customer(ALICE)
    assert_problem(
        await portal.api.post(
            f"{API}/orders",
            headers=alice,
            json={"kind": "line", "offeringId": "starter-esim", "simKind": "eSIM"},
        ),
        422,
        "validation-error",
    )
    assert_problem(
        await portal.api.post(
            f"{API}/orders", headers=alice, json={"kind": "bundle", "offeringId": "data-1gb-30d"}
        ),
        422,
        "validation-error",
    )
    # A valid purchase for Alice's own active line: orders is down, so 503 and nothing recorded.
    down = await portal.api.post(
        f"{API}/orders",
        headers={**alice, "Idempotency-Key": "attempt-1"},
        json={"kind": "bundle", "offeringId": "data-1gb-30d", "subscriptionId": "line-a1"},
    )
    assert_problem(down, 503, "service-unavailable")
    assert down.headers["retry-after"] == "5"
    assert (await portal.api.get(f"{API}/orders", headers=alice)).json()["total"] == 1
    # A suspended line buys nothing.
    await portal.publish(
        SubscriptionSuspended(
            subscription_id="line-a1", customer_id=ALICE, sequence=2, reason="lost_or_stolen"
        ),
        source="orders",
    )
    await portal.eventually(
        lambda: lines_of(portal, ALICE), lambda body: body["lines"][0]["status"] == "suspended"
    )
    assert_problem(
        await portal.api.post(
            f"{API}/orders",
            headers=alice,
            json={"kind": "airtime", "offeringId": "airtime-r50", "subscriptionId": "line-a1"},
        ),
        409,
        "conflict",
    )
    assert_problem(
        await portal.api.post(f"{API}/lines/line-a1/suspend", headers=alice), 409, "conflict"
    )


async def test_customers_sign_in_with_portal_tokens_only(portal: PortalWorld) -> None:
    assert_problem(await portal.api.get(f"{API}/lines"), 401, "unauthorized")
    staff = portal.issuer.headers("staff-thandi", scopes=["orders:read"])
    assert_problem(await portal.api.get(f"{API}/lines", headers=staff), 403, "forbidden")
    # The local platform's demo sign-in hands out a customer's token (development only).
    session = await portal.api.post(f"{API}/demo/session", json={"customerId": "demo-customer"})
    assert session.status_code == 200, session.text
    token = session.json()["accessToken"]
    me = await portal.api.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"customerId": "demo-customer"}
    assert_problem(
        await portal.api.post(f"{API}/demo/session", json={"customerId": "Robert'); DROP"}),
        422,
        "validation-error",
    )


async def test_the_web_portal_is_served(portal: PortalWorld) -> None:
    home = await portal.api.get("/")
    assert home.status_code == 307
    assert home.headers["location"] == "/web/"
    page = await portal.api.get("/web/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]


@pytest.mark.parametrize("portal_overrides", [{"balance_fresh_seconds": 10}])
async def test_a_copy_about_to_age_is_renewed_without_holding_the_view(
    portal: PortalWorld,
) -> None:
    # In the last 2 s of a 10 s copy, a view shows it (still current) at once and billing-sync is
    # asked in the background; the next views show its new figures.
    await two_customers_with_a_line_each(portal)
    first = await lines_of(portal, ALICE)
    assert first["lines"][0]["balance"]["airtime"]["amount"] == 42.5
    portal.billing.buckets["line-a1"] = [bucket("line-a1", "airtime", 7, 50, "ZAR")]
    portal.billing.delay_seconds = 0.3  # within the portal's deadline for it, but felt
    fetched = datetime.fromisoformat(first["lines"][0]["balance"]["asOf"])
    await asyncio.sleep(8.5 - (datetime.now(UTC) - fetched).total_seconds())
    calls = portal.billing.calls
    started = time.monotonic()
    body = await lines_of(portal, ALICE)
    assert time.monotonic() - started < 0.25
    assert body["lines"][0]["balance"]["status"] == "current"
    assert body["lines"][0]["balance"]["airtime"]["amount"] == 42.5
    renewed = await portal.eventually(
        lambda: lines_of(portal, ALICE),
        lambda body: body["lines"][0]["balance"]["airtime"]["amount"] == 7,
        within=3,
    )
    assert renewed["lines"][0]["balance"]["status"] == "current"
    assert portal.billing.calls > calls
