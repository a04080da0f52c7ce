"""The canary's view of the partners on the buy screen: a failing or slow partner becomes a notice
on the offers as soon as the canary's event arrives, and goes when it recovers; and the canary's
customer journey (sign in, my lines, offers) walked against this portal-api."""

from __future__ import annotations

from typing import Any

from mvno.canary.runner import Canary, http_client
from mvno.canary.settings import CanarySettings
from mvno.common.events.orders import OrderItemProgress, OrderStateChanged
from mvno.common.events.platform import CanaryFailed, CanaryRecovered

CUSTOMER = "customer-notices"


async def test_a_failing_partner_is_a_notice_on_the_offers_until_it_recovers(
    portal: Any,
) -> None:
    async def offers() -> Any:
        answer = await portal.api.get("/portal/v1/offers", headers=portal.customer(CUSTOMER))
        assert answer.status_code == 200
        return answer.json()

    assert (await offers())["partnerNotices"] == []
    await portal.publish(
        CanaryFailed(
            probe="payments.authorise_void",
            target="payments",
            latency_seconds=0.01,
            reason="POST /payments answered 503 (partner-outage)",
        ),
        source="platform",
    )
    await portal.publish(
        CanaryFailed(
            probe="network-operator.health",
            target="network-operator",
            latency_seconds=3.2,
            reason="slow: 3.20 s, above the 2.00 s threshold",
            slow=True,
        ),
        source="platform",
    )
    shown = await portal.eventually(offers, lambda body: len(body["partnerNotices"]) == 2)
    by_partner = {n["partner"]: n for n in shown["partnerNotices"]}
    assert by_partner["payments"]["status"] == "unavailable"
    assert "payments may take longer" in by_partner["payments"]["message"]
    assert by_partner["network-operator"]["status"] == "slow"
    assert "is slow" in by_partner["network-operator"]["message"]
    assert shown["offers"], "buying still works: the offers are shown beside the notices"
    # Nothing of the canary's technical reason reaches the customer.
    assert "503" not in str(shown["partnerNotices"])

    await portal.publish(
        CanaryRecovered(probe="payments.authorise_void", target="payments", latency_seconds=0.01),
        source="platform",
    )
    after = await portal.eventually(offers, lambda body: len(body["partnerNotices"]) == 1)
    assert after["partnerNotices"][0]["partner"] == "network-operator"


def order_event(order_id: str, state: str, sequence: int) -> OrderStateChanged:
    return OrderStateChanged(
        order_id=order_id,
        customer_id=CUSTOMER,
        channel="app",
        state=state,  # type: ignore[arg-type]
        sequence=sequence,
        items=(
            OrderItemProgress(
                item_id="1",
                action="add",
                offering_id="starter-esim",
                state=state,  # type: ignore[arg-type]
            ),
        ),
    )


async def test_an_order_in_progress_says_which_partner_may_hold_it_up(portal: Any) -> None:
    async def order() -> Any:
        answer = await portal.api.get(
            "/portal/v1/orders/order-notice-1", headers=portal.customer(CUSTOMER)
        )
        return answer.json() if answer.status_code == 200 else None

    await portal.publish(order_event("order-notice-1", "inProgress", 1), source="orders")
    await portal.publish(
        CanaryFailed(
            probe="network-operator.health",
            target="network-operator",
            latency_seconds=0.01,
            reason="GET /mno/v1/health answered 503 (partner-outage)",
        ),
        source="platform",
    )
    shown = await portal.eventually(
        order, lambda body: body is not None and len(body["partnerNotices"]) == 1
    )
    assert shown["partnerNotices"][0]["partner"] == "network-operator"
    assert shown["partnerNotices"][0]["status"] == "unavailable"

    # A finished order has nothing left to wait for.
    await portal.publish(order_event("order-notice-1", "completed", 2), source="orders")
    done = await portal.eventually(order, lambda body: body["state"] == "completed")
    assert done["partnerNotices"] == []


def canary_settings(portal: Any, **overrides: Any) -> CanarySettings:
    return CanarySettings(
        environment="test",
        portal_api_url=portal.base_url,
        canary_probes=("portal",),
        canary_timeout_seconds=10,
        canary_latency_threshold_seconds=5,
        **portal.issuer.settings,
        **overrides,
    )


async def test_the_canary_walks_the_customer_journey(portal: Any) -> None:
    settings = canary_settings(portal)
    async with http_client(settings) as http:
        (journey,) = await Canary(settings, http).round()
    assert journey.probe == "portal.journey"
    assert journey.ok, journey.reason


async def test_the_canary_journey_fails_when_the_portal_refuses_its_customer(
    portal: Any,
) -> None:
    settings = canary_settings(portal, canary_customer_scope="staff")
    async with http_client(settings) as http:
        (journey,) = await Canary(settings, http).round()
    assert not journey.ok
    assert "/portal/v1/me answered 403" in journey.reason
