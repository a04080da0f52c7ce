"""The probes: each calls a partner's critical endpoint (or walks the customer's journey through
portal-api) the way the services do, and reports what went wrong, if anything.

A probe leaves nothing behind at a partner: the payment probe voids the authorisation it makes,
and an authorisation whose outcome the canary could not learn (a timeout, a lost answer) is
replayed with the same Idempotency-Key on the next round and voided then.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from mvno.canary.domain.model import ProbeResult, judge
from mvno.canary.settings import CanarySettings

_log = logging.getLogger(__name__)


SETTLED_PER_ROUND = 3


class ProbeFailed(Exception):
    """What a probe found wrong, worded for an operator."""


@dataclass(frozen=True)
class Probe:
    name: str
    target: str
    check: Callable[[httpx.AsyncClient], Awaitable[None]]


def _expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        slug = ""
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            slug = str(response.json().get("type", "")).rsplit(":", 1)[-1]
        raise ProbeFailed(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}" + (f" ({slug})" if slug else "")
        )
    try:
        body = response.json()
    except ValueError:
        raise ProbeFailed(f"{response.request.url.path} answered without JSON") from None
    if not isinstance(body, dict):
        raise ProbeFailed(f"{response.request.url.path} answered without an object")
    return body


async def _get(http: httpx.AsyncClient, url: str, **kwargs: Any) -> dict[str, Any]:
    return _expect(await http.get(url, **kwargs), 200)


@dataclass
class PaymentProbe:
    """Authorise a small amount on the bank's test account, then void it."""

    settings: CanarySettings
    unsettled: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Authorisations whose answer never arrived, by Idempotency-Key: voided on a later round."""

    async def check(self, http: httpx.AsyncClient) -> None:
        await self.settle(http)
        key = f"canary-{uuid.uuid4()}"
        body = {
            "accountNumber": self.settings.canary_payment_account,
            "amountCents": self.settings.canary_payment_cents,
            "currency": "ZAR",
            "reference": key,
        }
        self.unsettled[key] = body
        payment = await self._authorise(http, key, body)
        if payment is None:
            raise ProbeFailed("the bank declined the canary's authorisation")
        await self._void(http, key, payment)

    async def settle(self, http: httpx.AsyncClient) -> None:
        """Void what earlier rounds authorised without learning it, a few per round so that a
        backlog left by a long outage never makes the probe itself slow (retried next round)."""
        for key, body in list(self.unsettled.items())[:SETTLED_PER_ROUND]:
            try:
                payment = await self._authorise(http, key, body)
                if payment is not None:
                    await self._void(http, key, payment)
                else:
                    self.unsettled.pop(key, None)
            except (ProbeFailed, httpx.HTTPError) as error:
                _log.info("earlier canary authorisation %s not settled yet: %s", key, error)
                return

    async def _authorise(
        self, http: httpx.AsyncClient, key: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The payment made under ``key`` (a replay answers the first outcome), or None when the
        bank refused it (nothing to void)."""
        response = await http.post(
            self.settings.payments_url.rstrip("/") + "/payments",
            json=body,
            headers={"Idempotency-Key": key},
        )
        if 400 <= response.status_code < 500:
            self.unsettled.pop(key, None)
            return None
        return _expect(response, 201)

    async def _void(self, http: httpx.AsyncClient, key: str, payment: dict[str, Any]) -> None:
        if payment.get("status") == "authorised":
            response = await http.post(
                f"{self.settings.payments_url.rstrip('/')}/payments/{payment['id']}/void",
                headers={"Idempotency-Key": key + "-void"},
            )
            payment = _expect(response, 200)
        if payment.get("status") != "voided":
            raise ProbeFailed(f"the canary's authorisation is {payment.get('status')}, not voided")
        self.unsettled.pop(key, None)


async def _portal_journey(settings: CanarySettings, http: httpx.AsyncClient) -> None:
    """Sign in as the canary customer, then my lines and the offers, as the portal's screens do."""
    response = await http.post(
        settings.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": settings.canary_client_id,
            "client_secret": settings.canary_client_secret.get_secret_value(),
            "subject": settings.canary_customer_id,
            "scope": settings.canary_customer_scope,
        },
    )
    if response.status_code != 200:
        raise ProbeFailed(f"sign-in answered {response.status_code}")
    token = str(response.json()["access_token"])
    headers = {"Authorization": f"Bearer {token}"}
    base = settings.portal_api_url.rstrip("/") + "/portal/v1"
    me = await _get(http, base + "/me", headers=headers)
    if me.get("customerId", me.get("customer_id")) != settings.canary_customer_id:
        raise ProbeFailed("/me does not name the canary customer")
    await _get(http, base + "/lines", headers=headers)
    offers = await _get(http, base + "/offers", headers=headers)
    if offers.get("status") != "current":
        raise ProbeFailed(f"offers are {offers.get('status')}: the catalogue is not answering")
    if not offers.get("offers"):
        raise ProbeFailed("no offers on sale")


def probes(settings: CanarySettings, payments: PaymentProbe) -> tuple[Probe, ...]:
    """The probes the settings ask for (every one by default), in the order the table lists them."""
    mno = settings.network_operator_url.rstrip("/")
    billing = settings.billing_platform_url.rstrip("/")

    async def mno_health(http: httpx.AsyncClient) -> None:
        await _get(http, mno + "/health")

    async def mno_numbers(http: httpx.AsyncClient) -> None:
        # The saga's first network step reserves a number: the pool must answer and not be empty.
        found = await _get(http, mno + "/msisdns", params={"status": "available", "limit": 1})
        if not found.get("items"):
            raise ProbeFailed("no available numbers in the pool")

    async def billing_health(http: httpx.AsyncClient) -> None:
        await _get(http, billing + "/health")

    async def billing_accounts(http: httpx.AsyncClient) -> None:
        await _get(http, billing + "/accounts", params={"limit": 1})

    async def portal(http: httpx.AsyncClient) -> None:
        await _portal_journey(settings, http)

    async def payments_health(http: httpx.AsyncClient) -> None:
        await _get(http, settings.payments_url.rstrip("/") + "/health")

    every = (
        Probe("network-operator.health", "network-operator", mno_health),
        Probe("network-operator.numbers", "network-operator", mno_numbers),
        Probe("payments.health", "payments", payments_health),
        Probe("payments.authorise_void", "payments", payments.check),
        Probe("billing-platform.health", "billing-platform", billing_health),
        Probe("billing-platform.accounts", "billing-platform", billing_accounts),
        Probe("portal.journey", "portal", portal),
    )
    wanted = set(settings.canary_probes)
    if not wanted:
        return every
    unknown = wanted - {p.name for p in every} - {p.target for p in every}
    if unknown:
        known = ", ".join(sorted({p.name for p in every} | {p.target for p in every}))
        raise ValueError(f"unknown canary probes {sorted(unknown)}; known: {known}")
    return tuple(p for p in every if p.name in wanted or p.target in wanted)


async def run_probe(probe: Probe, http: httpx.AsyncClient, settings: CanarySettings) -> ProbeResult:
    """Run one probe within its deadline and judge it (errors and slowness both fail it)."""
    started = time.perf_counter()
    error: str | None = None
    try:
        async with asyncio.timeout(settings.canary_timeout_seconds):
            await probe.check(http)
    except TimeoutError:
        error = f"no answer within {settings.canary_timeout_seconds:g} s"
    except ProbeFailed as failed:
        error = str(failed)
    except httpx.HTTPError as failed:
        error = f"{type(failed).__name__}: {failed}".rstrip(": ")
    except Exception as failed:  # a probe's own bug must not stop the others
        _log.exception("probe %s crashed", probe.name)
        error = f"probe error: {type(failed).__name__}"
    return judge(
        probe.name,
        probe.target,
        latency_seconds=time.perf_counter() - started,
        threshold_seconds=settings.canary_latency_threshold_seconds,
        error=error,
    )
