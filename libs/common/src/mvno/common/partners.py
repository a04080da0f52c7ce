"""Calls to a third party's JSON API (network operator, bank, billing platform) behind a circuit
breaker per partner.

Every mutating call carries the caller's deterministic Idempotency-Key, so a retry after a lost
answer does nothing twice at the partner. Timeouts come from the injected client (the HTTP client
factory's). Failures are sorted into what a retry may fix (timeouts, connection errors, 5xx, 429,
an open circuit) and refusals (4xx) a retry cannot fix; what to do about either is the caller's
business rule.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable
from typing import Any

import aiohttp
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from mvno.common import metric_catalog as catalog

CIRCUIT_STATES = {"closed": 0, "half-opened": 1, "opened": 2}
"""The circuit-state gauge's value for each of the breaker's states."""

_circuits: dict[str, int] = {}
"""Each partner's circuit state as its last call left it, read by the exporter."""


def _circuit_states(options: CallbackOptions) -> Iterable[Observation]:
    return [Observation(value, {"partner": name}) for name, value in list(_circuits.items())]


metrics.get_meter("mvno.partners").create_observable_gauge(
    catalog.CIRCUIT_STATE.name,
    [_circuit_states],
    unit=catalog.CIRCUIT_STATE.unit,
    description=catalog.CIRCUIT_STATE.description,
)


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
        http: aiohttp.ClientSession,
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
                    async with self._http.request(
                        method, self._base_url + path, json=json, params=params, headers=headers
                    ) as response:
                        status = response.status
                        content = await response.read()
                except TimeoutError:
                    raise _Unavailable(f"{self.name} did not answer in time") from None
                except aiohttp.ClientError as error:
                    raise _Unavailable(
                        f"{self.name} is unreachable ({type(error).__name__})"
                    ) from None
                if status >= 500 or status == 429:
                    raise _Unavailable(f"{self.name} answered {status}")
        except OpenedState:
            _circuits[self.name] = CIRCUIT_STATES["opened"]
            raise PartnerError(
                f"{self.name} is unavailable (circuit open)", retryable=True
            ) from None
        except _Unavailable as error:
            _circuits[self.name] = CIRCUIT_STATES.get(breaker.context.state, 0)
            raise PartnerError(str(error), retryable=True) from None
        _circuits[self.name] = CIRCUIT_STATES.get(breaker.context.state, 0)
        if status >= 400:
            try:
                problem = jsonlib.loads(content)
            except ValueError:
                problem = {}
            if not isinstance(problem, dict):
                problem = {}
            slug = str(problem.get("type", "")).rsplit(":", 1)[-1] or f"http-{status}"
            raise PartnerError(
                f"{self.name} refused ({slug})", retryable=False, status=status, problem=problem
            )
        try:
            body = jsonlib.loads(content) if content else {}
        except ValueError:
            raise PartnerError(
                f"{self.name} answered {status} without JSON", retryable=True
            ) from None
        if not isinstance(body, dict):
            raise PartnerError(f"{self.name} answered {status} without an object", retryable=True)
        return body
