"""The HTTP client retries idempotent requests only, with a timeout on every call."""

import asyncio
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from mvno.common.http import RetryTransport, create_http_client
from mvno.common.settings import ServiceSettings
from mvno.devstack.infrastructure import free_port
from mvno.devstack.servers import serve_app


class FlakyUpstream:
    """A real HTTP server that fails the first ``failures`` calls of each path with 503."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: Counter[str] = Counter()
        self.app = FastAPI()

        @self.app.api_route("/{path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        async def handle(path: str, request: Request) -> Response:
            key = f"{request.method} /{path}"
            self.calls[key] += 1
            if path == "slow":
                await asyncio.sleep(2)
            if self.calls[key] <= self.failures:
                return Response(status_code=503)
            return Response(content=b"ok")


def fast_client(base_url: str, attempts: int = 3, timeout: float = 5.0) -> httpx.AsyncClient:
    client = create_http_client(
        ServiceSettings(), base_url=base_url, attempts=attempts, timeout=timeout
    )
    # Keep the backoff real but short so the test stays fast.
    assert isinstance(client._transport, RetryTransport)
    client._transport._wait = {"wait_initial": 0.01, "wait_max": 0.05, "wait_jitter": 0.01}
    return client


@pytest.fixture
async def flaky():
    upstream = FlakyUpstream(failures=2)
    async with serve_app(upstream.app) as base:
        yield upstream, base


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_idempotent_request_is_retried_until_it_succeeds(flaky, method):
    upstream, base = flaky
    async with fast_client(base) as client:
        response = await client.request(method, "/thing")
    assert response.status_code == 200
    assert upstream.calls[f"{method} /thing"] == 3


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_non_idempotent_request_is_sent_once(flaky, method):
    upstream, base = flaky
    async with fast_client(base) as client:
        response = await client.request(method, "/thing", json={"a": 1})
    assert response.status_code == 503
    assert upstream.calls[f"{method} /thing"] == 1


async def test_post_with_idempotency_key_is_retried(flaky):
    upstream, base = flaky
    async with fast_client(base) as client:
        response = await client.post("/orders", json={"a": 1}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 200
    assert upstream.calls["POST /orders"] == 3


async def test_last_answer_is_returned_when_attempts_run_out(flaky):
    upstream, base = flaky
    async with fast_client(base, attempts=2) as client:
        response = await client.get("/thing")
    assert response.status_code == 503
    assert upstream.calls["GET /thing"] == 2


class CountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super().handle_async_request(request)


@pytest.mark.parametrize(("method", "headers", "expected"), [("GET", {}, 3), ("POST", {}, 1)])
async def test_connection_refused_is_retried_only_when_idempotent(method, headers, expected):
    base = f"http://127.0.0.1:{free_port()}"
    wire = CountingTransport()
    client = create_http_client(ServiceSettings(), base_url=base, attempts=3, inner_transport=wire)
    client._transport._wait = {"wait_initial": 0.01, "wait_max": 0.05, "wait_jitter": 0.01}
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.request(method, "/thing", headers=headers)
    assert wire.sent == expected


async def test_every_call_has_a_timeout(flaky):
    _, base = flaky
    async with fast_client(base, attempts=1, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")


def test_default_client_has_timeouts_from_settings():
    client = create_http_client(ServiceSettings(http_timeout_seconds=4))
    assert client.timeout.read == 4
    assert client.timeout.connect == 2
