"""The canary's view of the partners on the buy screen: a failing or slow partner becomes a notice
on the offers as soon as the canary's event arrives, and goes when it recovers; and the canary's
customer journey (sign in, my lines, offers) walked against this portal-api."""

from __future__ import annotations

from typing import Any

from mvno.canary.runner import Canary, http_client
from mvno.canary.settings import CanarySettings
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
