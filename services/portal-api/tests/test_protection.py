"""Security headers on every answer; rate limits per customer and per client address (429 with
Retry-After)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mvno.devstack.servers import serve_app
from mvno.devstack.testing import assert_problem
from mvno.portal_api.app import create_app
from mvno.portal_api.settings import PortalApiSettings

from .conftest import API, PortalWorld

HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


async def test_every_answer_carries_the_security_headers(portal: PortalWorld) -> None:
    alice = portal.customer("customer-alice")
    answers = [
        await portal.api.get(f"{API}/lines", headers=alice),  # 200
        await portal.api.get(f"{API}/lines"),  # 401
        await portal.api.get(f"{API}/orders/nope", headers=alice),  # 404
        await portal.api.get("/web/"),  # the portal page
        await portal.api.get("/web/app.js"),
        await portal.api.post(f"{API}/orders", headers=alice, content=b"{"),  # 422
    ]
    for answer in answers:
        for name, value in HEADERS.items():
            assert answer.headers[name] == value, (answer.request.url, name)
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy  # no inline script on the portal


@pytest.fixture
async def strict(portal: PortalWorld) -> AsyncIterator[httpx.AsyncClient]:
    """A second replica with small limits, on the same database."""
    settings = portal.settings.model_copy(
        update={"rate_limit_per_customer": "3/minute", "rate_limit_per_ip": "8/minute"}
    )
    async with (
        serve_app(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url) as api,
    ):
        yield api


async def test_a_customer_past_their_limit_gets_429_with_retry_after(
    portal: PortalWorld, strict: httpx.AsyncClient
) -> None:
    alice, bob = portal.customer("customer-alice"), portal.customer("customer-bob")
    for _ in range(3):
        assert (await strict.get(f"{API}/me", headers=alice)).status_code == 200
    refused = await strict.get(f"{API}/me", headers=alice)
    assert_problem(refused, 429, "too-many-requests")
    # A sliding window counter: the three hits weigh on the next minute too, so the fourth fits
    # once a third of it has passed: at most 60 + 20 s from now.
    assert 1 <= int(refused.headers["retry-after"]) <= 80
    # Another customer from the same address still gets in (until the address's own limit).
    assert (await strict.get(f"{API}/me", headers=bob)).status_code == 200


async def test_one_address_past_its_limit_gets_429_whoever_it_claims_to_be(
    portal: PortalWorld, strict: httpx.AsyncClient
) -> None:
    answers = [
        (await strict.get(f"{API}/me", headers=portal.customer(f"customer-{n}"))).status_code
        for n in range(10)
    ]
    assert answers[:8] == [200] * 8
    assert answers[8:] == [429, 429]
    refused = await strict.get(f"{API}/lines")  # even without a token
    assert_problem(refused, 429, "too-many-requests")
    assert "retry-after" in refused.headers
    assert (await strict.get("/health/live")).status_code == 200  # probes are never limited


def test_production_refuses_the_demo_sign_in_and_the_development_secret() -> None:
    with pytest.raises(ValueError, match="MVNO_DEMO_LOGIN_ENABLED"):
        PortalApiSettings(
            environment="production", dev_issuer_enabled=False, client_secret="from-the-vault-x"
        )
    with pytest.raises(ValueError, match="client_secret"):
        PortalApiSettings(
            environment="production", dev_issuer_enabled=False, demo_login_enabled=False
        )
    settings = PortalApiSettings(
        environment="production",
        dev_issuer_enabled=False,
        demo_login_enabled=False,
        client_secret="from-the-vault-x",
    )
    assert settings.token_endpoint == settings.jwt_issuer + "/token"


async def test_a_known_tokens_my_lines_answer_is_the_same_limited_and_protected(
    portal: PortalWorld, strict: httpx.AsyncClient
) -> None:
    # One token asked again and again, as a portal refreshing its screen does: the first answer
    # verifies it, the next ones are answered before routing (shortcut.Shortcut).
    alice = portal.customer("customer-alice")
    first = await strict.get(f"{API}/lines", headers=alice)
    again = await strict.get(f"{API}/lines", headers=alice)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["content-type"] == "application/json"
    for name, value in HEADERS.items():
        assert again.headers[name] == value
    assert "x-request-id" in again.headers
    assert (await strict.get(f"{API}/lines", headers=alice)).status_code == 200  # 3 of 3
    refused = await strict.get(f"{API}/lines", headers=alice)
    assert_problem(refused, 429, "too-many-requests")
    assert "retry-after" in refused.headers
    # A token without the portal scope is never answered by the fast path, verified or not.
    staff = portal.issuer.headers("staff-thandi", scopes=["orders:read"])
    assert_problem(await strict.get(f"{API}/me", headers=staff), 403, "forbidden")
    assert_problem(await strict.get(f"{API}/lines", headers=staff), 403, "forbidden")


async def test_my_lines_with_a_body_is_limited_by_the_body_limit(portal: PortalWorld) -> None:
    # Answered by the edge only without a body: one declared past the limit meets the body limit.
    alice = portal.customer("customer-alice")
    assert (await portal.api.get(f"{API}/lines", headers=alice)).status_code == 200
    too_big = b"x" * (portal.settings.max_request_bytes + 1)
    refused = await portal.api.request("GET", f"{API}/lines", headers=alice, content=too_big)
    assert_problem(refused, 413, "payload-too-large")
    for name, value in HEADERS.items():
        assert refused.headers[name] == value
