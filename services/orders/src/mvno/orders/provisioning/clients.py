"""Calls to the network operator and the bank through the shared partner client
(:mod:`mvno.common.partners`: a circuit breaker per partner, retryable failures told apart from
refusals), with its failures told as the saga's :class:`~mvno.orders.domain.saga.Failure`.

Every call carries a deterministic Idempotency-Key (order, item, step), so a retry after a lost
answer cannot do anything twice at the partner; a refusal the customer can fix (RICA) makes the
order wait instead of failing.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from purgatory import AsyncCircuitBreakerFactory

from mvno.common import partners
from mvno.orders.domain.saga import Failure


class PartnerFailure(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


CUSTOMER_FIXABLE = frozenset({"rica-refused"})
"""Refusals the customer fixes by sending corrected documents: the order waits, not fails."""


class Partner:
    """One partner's API (the shared client) with its failures told as the saga's."""

    def __init__(
        self,
        name: str,
        http: aiohttp.ClientSession,
        base_url: str,
        breakers: AsyncCircuitBreakerFactory,
    ) -> None:
        self.name = name
        self._partner = partners.Partner(name, http, base_url, breakers)

    async def call(
        self, method: str, path: str, *, key: str | None = None, json: Any = None
    ) -> dict[str, Any]:
        try:
            return await self._partner.call(method, path, key=key, json=json)
        except partners.PartnerError as error:
            raise PartnerFailure(_failure(error)) from None


def _failure(error: partners.PartnerError) -> Failure:
    if error.retryable:
        return Failure(error.reason, retryable=True)
    detail = error.problem.get("refusalReason")
    # What a customer may read: the partner's reason codes, never the request's personal data.
    return Failure(
        error.reason + (f": {detail}" if detail else ""),
        retryable=False,
        customer_must_act=error.slug in CUSTOMER_FIXABLE,
    )
