"""Calls to the network operator and the bank, each behind a circuit breaker.

Every call carries a timeout and a deterministic Idempotency-Key (order, item, step), so a retry
after a lost answer cannot do anything twice at the partner. Failures are sorted into what a
retry may fix (timeouts, connection errors, 5xx, an open circuit) and what it cannot (a 4xx
refusal); the saga decides what to do with them.
"""

from __future__ import annotations

from typing import Any

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from mvno.orders.domain.saga import Failure


class PartnerFailure(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class _Unavailable(Exception):
    """A 5xx answer: counts against the partner's circuit."""


CUSTOMER_FIXABLE = frozenset({"rica-refused"})
"""Refusals the customer fixes by sending corrected documents: the order waits, not fails."""


class Partner:
    """One partner's API: JSON over HTTP, behind its own circuit breaker."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        base_url: str,
        breakers: AsyncCircuitBreakerFactory,
    ) -> None:
        self.name = name
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._breakers = breakers

    async def call(
        self, method: str, path: str, *, key: str | None = None, json: Any = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        breaker = await self._breakers.get_breaker(self.name)
        try:
            async with breaker:
                try:
                    response = await self._http.request(
                        method, self._base_url + path, json=json, headers=headers
                    )
                except httpx.TimeoutException:
                    raise _Unavailable(f"{self.name} did not answer in time") from None
                except httpx.TransportError as error:
                    raise _Unavailable(
                        f"{self.name} is unreachable ({type(error).__name__})"
                    ) from None
                if response.status_code >= 500 or response.status_code == 429:
                    raise _Unavailable(f"{self.name} answered {response.status_code}")
        except OpenedState:
            raise PartnerFailure(
                Failure(f"{self.name} is unavailable (circuit open)", retryable=True)
            ) from None
        except _Unavailable as error:
            raise PartnerFailure(Failure(str(error), retryable=True)) from None
        if response.status_code >= 400:
            raise PartnerFailure(_refusal(self.name, response))
        body: dict[str, Any] = response.json() if response.content else {}
        return body


def _refusal(partner: str, response: httpx.Response) -> Failure:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    slug = str(problem.get("type", "")).rsplit(":", 1)[-1] or f"http-{response.status_code}"
    detail = problem.get("refusalReason")
    # What a customer may read: the partner's reason codes, never the request's personal data.
    return Failure(
        f"{partner} refused ({slug})" + (f": {detail}" if detail else ""),
        retryable=False,
        customer_must_act=slug in CUSTOMER_FIXABLE,
    )
