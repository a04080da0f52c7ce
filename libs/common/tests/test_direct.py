"""A DirectRoute answers as FastAPI does for the same declaration, and documents itself the same.

Two routes declare the same endpoint: one served by FastAPI's dependency solving, the other read
by its own function (``read_by``). Every request gets the same status and the same errors from
both; the OpenAPI of both operations is the same.
"""

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Header, Request, Response
from pydantic import BaseModel, Field, StringConstraints, TypeAdapter

from mvno.common.direct import DirectRoute, header, json_body, read_by
from mvno.common.problems import install_problem_handlers


class Line(BaseModel):
    offering: str = Field(min_length=1)
    quantity: int = Field(ge=1, le=5)


class Basket(BaseModel):
    channel: str
    lines: list[Line] = Field(min_length=1)


Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=8)]
_KEY = TypeAdapter(Annotated[str, StringConstraints(max_length=8)])


async def place(body: Basket, key: Key = None) -> Response:
    return Response(
        body.model_dump_json(), status_code=201, headers={"Idempotency-Key": key or "-"}
    )


async def _arguments(request: Request) -> dict[str, Any]:
    return {
        "key": header(request, "Idempotency-Key", _KEY),
        "body": await json_body(request, Basket),
    }


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    plain = APIRouter(prefix="/plain")
    direct = APIRouter(prefix="/direct", route_class=DirectRoute)
    plain.post("/basket", status_code=201)(place)
    direct.post("/basket", status_code=201)(read_by(_arguments)(place))
    direct.get("/unmarked")(_unmarked)
    app.include_router(plain)
    app.include_router(direct)
    return app


async def _unmarked(limit: int = 3) -> dict[str, int]:
    return {"limit": limit}


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


GOOD = {"channel": "app", "lines": [{"offering": "esim", "quantity": 2}]}
REQUESTS = {
    "good": {"json": GOOD, "headers": {"Idempotency-Key": "k-1"}},
    "no key": {"json": GOOD},
    "long key": {"json": GOOD, "headers": {"Idempotency-Key": "k" * 9}},
    "no body": {"headers": {"Content-Type": "application/json"}},
    "not json": {"content": b"{", "headers": {"Content-Type": "application/json"}},
    "json+suffix": {
        "content": b'{"channel": "app", "lines": [{"offering": "x", "quantity": 1}]}',
        "headers": {"Content-Type": "application/vnd.basket+json; charset=utf-8"},
    },
    "text body": {"content": b'{"channel": "app"}', "headers": {"Content-Type": "text/plain"}},
    "no content type": {"content": b'{"channel": "app"}'},
    "invalid": {"json": {"channel": "app", "lines": [{"offering": "", "quantity": 9}]}},
    "missing member": {"json": {"lines": []}},
    "wrong type": {"json": [1, 2]},
}


def _locations(response: httpx.Response) -> list[str]:
    return sorted(error["field"] for error in response.json().get("errors", []))


@pytest.mark.parametrize("case", sorted(REQUESTS))
async def test_a_direct_route_answers_as_fastapi_does(client, case):
    plain = await client.post("/plain/basket", **REQUESTS[case])
    direct = await client.post("/direct/basket", **REQUESTS[case])
    assert direct.status_code == plain.status_code
    assert direct.headers.get("content-type") == plain.headers.get("content-type")
    if plain.status_code == 422:
        assert direct.headers["content-type"] == "application/problem+json"
        assert _locations(direct) == _locations(plain)
    else:
        assert direct.json() == plain.json()
        assert direct.headers["idempotency-key"] == plain.headers["idempotency-key"]


async def test_the_cases_cover_both_answers(client):
    statuses = {(await client.post("/plain/basket", **r)).status_code for r in REQUESTS.values()}
    assert statuses == {201, 422}


async def test_an_unmarked_endpoint_of_a_direct_router_is_served_by_fastapi(client):
    assert (await client.get("/direct/unmarked?limit=4")).json() == {"limit": 4}
    assert (await client.get("/direct/unmarked?limit=x")).status_code == 422


async def test_a_direct_route_is_documented_as_the_plain_one():
    paths = _app().openapi()["paths"]
    plain, direct = paths["/plain/basket"]["post"], paths["/direct/basket"]["post"]
    for operation in (plain, direct):
        operation.pop("operationId")
    assert direct == plain
    assert direct["requestBody"]["required"] is True
    assert [p["name"] for p in direct["parameters"]] == ["Idempotency-Key"]
