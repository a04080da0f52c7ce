"""Customers' bearer tokens, each verified once and then remembered until it expires.

A portal screen refreshes often with the same token; checking its RS256 signature and claims on
every request cost this service more than the screen's own database read (bench/portal.py). The
validator's answer for a token is kept (by the whole token string, so a changed token is a new
entry) for at most ``remember_seconds`` and never past the token's own ``exp``.
"""

from __future__ import annotations

import time
from typing import Any

from cachetools import TTLCache

from mvno.common.auth import Principal


class RememberingValidator:
    """Wraps the service's :class:`~mvno.common.auth.TokenValidator` with a bounded memory."""

    def __init__(
        self, validator: Any, *, remember_seconds: float, max_tokens: int = 50_000
    ) -> None:
        self._validator = validator
        self._remembered: TTLCache[str, tuple[Principal, float]] = TTLCache(
            maxsize=max_tokens, ttl=remember_seconds, timer=time.monotonic
        )

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before and not expired yet; ``None`` otherwise."""
        entry = self._remembered.get(token)
        if entry is not None and time.time() < entry[1]:
            return entry[0]
        return None

    async def validate(self, token: str) -> Principal:
        known = self.remembered(token)
        if known is not None:
            return known
        principal: Principal = await self._validator.validate(token)
        expires = principal.claims.get("exp")
        if isinstance(expires, int | float):
            self._remembered[token] = (principal, float(expires))
        return principal
