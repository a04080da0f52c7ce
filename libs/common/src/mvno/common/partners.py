"""Calls to a third party's JSON API (network operator, bank, billing platform) behind a circuit
breaker per partner.

Every mutating call carries the caller's deterministic Idempotency-Key, so a retry after a lost
answer does nothing twice at the partner. Timeouts come from the injected client (the HTTP client
factory's). Failures are sorted into what a retry may fix (timeouts, connection errors, 5xx, 429,
an open circuit) and refusals (4xx) a retry cannot fix; what to do about either is the caller's
business rule.
"""

from __future__ import annotations

from typing import Any

import httpx
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState


class PartnerError(Exception):
    """A call that did not succeed; ``retryable`` says whether trying again may help."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.problem = problem or {}

    @property
    def slug(self) -> str:
        return str(self.problem.get("type", "")).rsplit(":", 1)[-1]


class _Unavailable(Exception):
    """Counts against the partner's circuit."""


class Partner:
    """One partner's JSON API behind its own circuit breaker."""

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
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        breaker = await self._breakers.get_breaker(self.name)
        try:
            async with breaker:
                try:
                    response = await self._http.request(
                        method, self._base_url + path, json=json, params=params, headers=headers
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
            raise PartnerError(
                f"{self.name} is unavailable (circuit open)", retryable=True
            ) from None
        except _Unavailable as error:
            raise PartnerError(str(error), retryable=True) from None
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            slug = str(problem.get("type", "")).rsplit(":", 1)[-1] or f"http-{response.status_code}"
            raise PartnerError(
                f"{self.name} refused ({slug})",
                retryable=False,
                status=response.status_code,
                problem=problem,
            )
        body: dict[str, Any] = response.json() if response.content else {}
        return body
