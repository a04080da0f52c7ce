"""Outgoing HTTP: an httpx client with a timeout on every call and retries for idempotent requests,
and the aiohttp session partner calls go through.

Trace context is injected by the httpx instrumentation that :mod:`mvno.common.tracing` installs,
and by the OpenTelemetry trace config each partner session carries.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
import httpx
import stamina
from opentelemetry.instrumentation.aiohttp_client import create_trace_config

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


def create_partner_session(
    settings: ServiceSettings, *, timeout: float | None = None
) -> aiohttp.ClientSession:
    """The session for a third party's JSON API (:class:`mvno.common.partners.Partner`).

    aiohttp rather than httpx: a provisioning worker makes several partner calls per order, and
    aiohttp's client costs far less CPU per call. Every
    call is bounded by ``timeout`` (``settings.http_timeout_seconds`` when None), connecting by
    two seconds at most; nothing is retried here, as what a failed partner call means is the
    caller's business rule. Each call is a client span with the trace context sent along.
    """
    seconds = timeout if timeout is not None else settings.http_timeout_seconds
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=seconds, connect=min(seconds, 2.0)),
        connector=aiohttp.TCPConnector(limit=100),
        trace_configs=[create_trace_config()],
        raise_for_status=False,
    )
