"""Request bodies larger than the limit get 413 problem+json, declared or streamed."""

import httpx
import pytest
from fastapi import FastAPI, Request

from mvno.common.limits import BodySizeLimitMiddleware
from mvno.common.problems import install_problem_handlers

LIMIT = 1024


@pytest.fixture
async def client():
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=LIMIT)
    seen: list[int] = []

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"size": len(body)}

    @app.get("/screen")
    async def screen(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        client.seen = seen
        yield client


async def test_body_within_limit_is_served(client):
    response = await client.post("/upload", content=b"x" * LIMIT)
    assert response.json() == {"size": LIMIT}


async def test_declared_oversized_body_is_refused_before_the_route(client):
    response = await client.post("/upload", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:mvno:problem:payload-too-large"
    assert client.seen == []


async def test_streamed_oversized_body_is_refused(client):
    async def chunks():
        for _ in range(4):
            yield b"y" * 512

    response = await client.post("/upload", content=chunks())
    assert response.status_code == 413
    assert client.seen == []


async def test_a_request_without_a_body_is_served(client):
    response = await client.get("/screen")
    assert response.status_code == 200
    assert response.json() == {"size": 0}


async def test_a_chunked_body_within_the_limit_is_served(client):
    async def chunks():
        yield b"z" * 512
        yield b"z" * 512

    response = await client.post("/upload", content=chunks())
    assert response.json() == {"size": LIMIT}
