"""Security headers on every answer, and rate limits per client address and per customer.

Limits are counted per replica, in memory (a sliding window counter, as the ``limits`` library's):
with N replicas behind the load balancer a client gets at most N times the limit, which still
stops a flood from one address or one customer's token, and needs no shared store on the hot path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import limits
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mvno.common.problems import Problem, problem_response

_PORTAL_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's /docs page loads Swagger UI from a CDN and runs an inline script.
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_DOCS_PATHS = ("/docs", "/redoc")


class RateLimits:
    """Sliding-window counters by key; :meth:`check` raises a 429 problem with Retry-After.

    Each key counts the hits of the current fixed window and of the one before it; a hit is
    allowed while the previous window's count, weighted by how much of it the sliding window
    still covers, plus the current one stays under the limit: the ``limits`` library's sliding
    window counter, counted synchronously in a dict (no coroutine or lock per hit, as every
    request is counted twice). Counters of keys not seen for two windows are purged now and then.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counters: dict[tuple[int, int, tuple[str, ...]], _Counter] = {}
        self._next_purge = clock()

    def check(self, limit: limits.RateLimitItem, *key: str) -> None:
        now = self._clock()
        window = limit.get_expiry()
        if now >= self._next_purge:
            self._purge(now)
        counter_key = (limit.amount, window, key)
        counter = self._counters.get(counter_key)
        if counter is None:
            counter = self._counters[counter_key] = _Counter(now - now % window)
        counter.roll(now, window)
        weight = 1 - (now - counter.started) / window
        if counter.previous * weight + counter.current + 1 <= limit.amount:
            counter.current += 1
            return
        raise Problem(
            429,
            "too-many-requests",
            "Too many requests; wait a moment and try again.",
            headers={"Retry-After": str(counter.retry_after(now, window, limit.amount))},
        )

    def _purge(self, now: float) -> None:
        self._counters = {
            key: counter
            for key, counter in self._counters.items()
            if counter.started + 2 * key[1] > now
        }
        self._next_purge = now + 60


@dataclass(frozen=True)
class CustomerLimits:
    """The limits a route applies to the signed-in customer (the per-address one is the edge's),
    counted in the replica's :class:`RateLimits`."""

    counters: RateLimits
    views: limits.RateLimitItem
    """Every request of a customer."""
    orders: limits.RateLimitItem
    """Purchases and suspensions, on top of ``views``."""

    def check_request(self, customer_id: str) -> None:
        self.counters.check(self.views, "customer", customer_id)

    def check_order(self, customer_id: str) -> None:
        self.counters.check(self.orders, "orders", customer_id)


class _Counter:
    __slots__ = ("current", "previous", "started")

    def __init__(self, started: float) -> None:
        self.started = started
        self.previous = 0
        self.current = 0

    def roll(self, now: float, window: int) -> None:
        passed = int((now - self.started) // window)
        if passed >= 1:
            self.previous = self.current if passed == 1 else 0
            self.current = 0
            self.started += passed * window

    def retry_after(self, now: float, window: int, amount: int) -> int:
        """Whole seconds until a hit would be allowed again."""
        left_in_window = self.started + window - now
        if self.current + 1 > amount or self.previous == 0:
            # Not before this window ends; after it, this window's hits weigh as the previous.
            wait = left_in_window + max(0.0, (1 - (amount - 1) / max(self.current, 1)) * window)
        else:
            # The previous window's weight falls until the hit fits.
            wait = left_in_window - (amount - 1 - self.current) * window / self.previous
        return max(1, math.ceil(wait))


class PortalEdge:
    """The portal's outermost middleware: the security headers on every answer (CSP with
    frame-ancestors, HSTS, nosniff, Referrer-Policy and friends) and the per-address limit (429;
    health probes exempt), in one layer with one send wrapper."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate_limits: RateLimits,
        limit_per_address: str,
        hsts_seconds: int,
    ) -> None:
        self.app = app
        self._limits = rate_limits
        self._address_limit = limits.parse(limit_per_address)
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if hsts_seconds > 0:
            common.append(
                (
                    b"strict-transport-security",
                    f"max-age={hsts_seconds}; includeSubDomains".encode(),
                )
            )
        self._portal_headers = [*common, (b"content-security-policy", _PORTAL_POLICY.encode())]
        self._docs_headers = [*common, (b"content-security-policy", _DOCS_POLICY.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        extra = self._docs_headers if path.startswith(_DOCS_PATHS) else self._portal_headers
        if not path.startswith("/health/"):
            client = scope.get("client")
            try:
                self._limits.check(self._address_limit, "ip", client[0] if client else "unknown")
            except Problem as problem:
                await _refuse(problem, scope, receive, _adding(send, extra))
                return
        await self.app(scope, receive, _adding(send, extra))


def _adding(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *headers]
        await send(message)

    return with_headers


async def _refuse(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(
        status=problem.status,
        slug=problem.slug,
        detail=problem.detail,
        instance=scope["path"],
        headers=problem.headers,
    )
    await response(scope, receive, send)
