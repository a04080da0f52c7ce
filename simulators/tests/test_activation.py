"""Asynchronous activation: 202 at once, then the outcome POSTed to the client's callback URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from mvno.devstack.servers import serve_app

Activate = Callable[..., Awaitable[dict[str, Any]]]


class Receiver:
    """A client's callback endpoint on a real socket; it can be told to fail first."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failures_left = 0
        self.url = ""
        self.app = FastAPI()
        self.app.post("/callbacks/activation")(self.receive)

    async def receive(self, request: Request) -> Response:
        if self.failures_left:
            self.failures_left -= 1
            return Response(status_code=503)
        self.received.append(await request.json())
        return Response(status_code=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serve_app(receiver.app) as base_url:
        receiver.url = f"{base_url}/callbacks/activation"
        yield receiver


async def until(condition: Callable[[], Awaitable[bool]], deadline: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await condition():
        assert loop.time() < end, "the condition did not hold in time"
        await asyncio.sleep(0.05)


async def delivered(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get("/admin/mno/callbacks")).json()["items"]
    return items


async def test_pending_activation_completes_and_calls_back(
    client: httpx.AsyncClient, activate: Activate, receiver: Receiver
):
    await client.put("/admin/mno/activation", json={"delaySeconds": 0.2})
    pending = await activate(callbackUrl=receiver.url)
    assert pending["status"] == "pending"

    async def arrived() -> bool:
        return bool(receiver.received)

    await until(arrived)
    [event] = receiver.received
    assert event["eventType"] == "subscription.activated"
    assert event["subscription"]["id"] == pending["id"]
    assert event["subscription"]["status"] == "active"
    read = (await client.get(f"/mno/v1/subscriptions/{pending['id']}")).json()
    assert read["status"] == "active"

    async def recorded() -> bool:
        # The simulator records the delivery once the receiver's answer is back.
        return any(record["delivered"] for record in await delivered(client))

    await until(recorded)
    [record] = await delivered(client)
    assert record["delivered"] is True
    assert record["attempts"] == 1


async def test_pending_activation_answers_202(
    client: httpx.AsyncClient, registered_number, available_sim
):
    await client.put("/admin/mno/activation", json={"delaySeconds": 60})
    body = {"msisdn": await registered_number(), "iccid": await available_sim(), "tariffCode": "P1"}
    headers = {"Idempotency-Key": "activate-1"}
    response = await client.post("/mno/v1/subscriptions", json=body, headers=headers)
    assert response.status_code == 202
    replay = await client.post("/mno/v1/subscriptions", json=body, headers=headers)
    assert replay.status_code == 202
    assert replay.json() == response.json()


async def test_failed_activation_is_called_back_and_gives_the_sim_and_number_back(
    client: httpx.AsyncClient, activate: Activate, receiver: Receiver
):
    await client.put("/admin/mno/activation", json={"delaySeconds": 0.05, "failureRate": 1})
    pending = await activate(callbackUrl=receiver.url)

    async def arrived() -> bool:
        return bool(receiver.received)

    await until(arrived)
    event = receiver.received[0]
    assert event["eventType"] == "subscription.activation-failed"
    assert event["subscription"]["status"] == "failed"
    assert event["subscription"]["failureReason"]
    sim = (await client.get(f"/mno/v1/sims/{pending['iccid']}")).json()
    assert sim["status"] == "available"
    reserved = (await client.get("/mno/v1/msisdns", params={"status": "reserved"})).json()
    assert pending["msisdn"] in [n["msisdn"] for n in reserved["items"]]


async def test_callback_retried_until_the_client_takes_it(
    client: httpx.AsyncClient, activate: Activate, receiver: Receiver
):
    receiver.failures_left = 1
    await client.put("/admin/mno/activation", json={"delaySeconds": 0.01})
    await activate(callbackUrl=receiver.url)

    async def recorded() -> bool:
        return bool(await delivered(client))

    await until(recorded)
    [record] = await delivered(client)
    assert record["delivered"] is True
    assert record["attempts"] == 2
    assert len(receiver.received) == 1


async def test_undeliverable_callback_is_recorded(client: httpx.AsyncClient, activate: Activate):
    await client.put("/admin/mno/activation", json={"delaySeconds": 0.01})
    await activate(callbackUrl="http://127.0.0.1:9/unreachable")

    async def recorded() -> bool:
        return bool(await delivered(client))

    await until(recorded)
    [record] = await delivered(client)
    assert record["delivered"] is False
    assert record["attempts"] == 3
    assert record["error"]


async def test_callback_url_must_be_http(
    client: httpx.AsyncClient, registered_number, available_sim
):
    body = {
        "msisdn": await registered_number(),
        "iccid": await available_sim(),
        "tariffCode": "P1",
        "callbackUrl": "file:///etc/passwd",
    }
    response = await client.post("/mno/v1/subscriptions", json=body)
    assert response.status_code == 422
