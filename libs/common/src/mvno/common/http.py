"""Outgoing HTTP: an httpx client with a timeout on every call and retries for idempotent requests.

Trace context is injected by the httpx instrumentation that :mod:`mvno.common.tracing` installs.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
import stamina

from mvno.common.settings import ServiceSettings

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


def is_idempotent(request: httpx.Request) -> bool:
    """Safe to send twice: an idempotent method, or a POST/PATCH carrying an Idempotency-Key."""
    return request.method in IDEMPOTENT_METHODS or IDEMPOTENCY_KEY_HEADER in request.headers


class _RetryableStatus(Exception):
    pass


class RetryTransport(httpx.AsyncBaseTransport):
    """Retries idempotent requests on connection failures, timeouts and 502/503/504.

    Waits grow exponentially with jitter (stamina's backoff). The last answer is returned as is,
    so the caller still sees the upstream's 503 after the final attempt.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        attempts: int = 3,
        wait_initial: float = 0.1,
        wait_max: float = 2.0,
        wait_jitter: float = 0.2,
        retry_statuses: Iterable[int] = RETRYABLE_STATUSES,
    ) -> None:
        self._inner = inner
        self._attempts = attempts
        self._wait = {
            "wait_initial": wait_initial,
            "wait_max": wait_max,
            "wait_jitter": wait_jitter,
        }
        self._retry_statuses = frozenset(retry_statuses)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not is_idempotent(request) or self._attempts == 1:
            return await self._inner.handle_async_request(request)
        response: httpx.Response | None = None
        async for attempt in stamina.retry_context(
            on=(httpx.TransportError, _RetryableStatus),
            attempts=self._attempts,
            timeout=None,
            **self._wait,
        ):
            with attempt:
                response = await self._inner.handle_async_request(request)
                if response.status_code in self._retry_statuses and attempt.num < self._attempts:
                    await response.aclose()
                    raise _RetryableStatus(response.status_code)
        assert response is not None
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def create_http_client(
    settings: ServiceSettings,
    *,
    base_url: str = "",
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
    attempts: int | None = None,
    inner_transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for calling another service or a partner.

    Every call has a timeout (connect, read, write and pool); idempotent calls are retried.
    """
    seconds = timeout if timeout is not None else settings.http_timeout_seconds
    transport = RetryTransport(
        inner_transport or httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100)),
        attempts=attempts if attempts is not None else settings.http_retry_attempts,
    )
    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(seconds, connect=min(seconds, 2.0)),
        transport=transport,
    )
