"""Every error answer is problem+json with a stable type and TMF's error fields."""

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from mvno.common.problems import PROBLEM_CONTENT_TYPE, Problem, install_problem_handlers


class Item(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(gt=0)


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        if item_id == 7:
            raise Problem(409, "item-locked", "Item 7 is being changed", retry_after=3)
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == f"urn:mvno:problem:{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["code"] == slug
    assert body["reason"] == body["title"]
    assert body["message"]
    return body


async def test_unknown_route_is_404_problem(client):
    body = assert_problem(await client.get("/nowhere"), 404, "not-found")
    assert body["instance"] == "/nowhere"


async def test_wrong_method_is_405_problem(client):
    response = await client.delete("/items")
    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


async def test_validation_error_lists_each_offending_field(client):
    body = assert_problem(
        await client.post("/items", json={"name": "", "quantity": 0}), 422, "validation-error"
    )
    pointers = {error["pointer"] for error in body["errors"]}
    assert pointers == {"#/body/name", "#/body/quantity"}
    assert {error["field"] for error in body["errors"]} == {"name", "quantity"}
    assert all(error["detail"] for error in body["errors"])


async def test_malformed_json_is_a_clear_4xx(client):
    response = await client.post(
        "/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation-error")


async def test_path_parameter_of_wrong_type(client):
    body = assert_problem(await client.get("/items/abc"), 422, "validation-error")
    assert body["errors"][0]["pointer"] == "#/path/item_id"


async def test_raised_problem_keeps_its_slug_and_extensions(client):
    body = assert_problem(await client.get("/items/7"), 409, "item-locked")
    assert body["detail"] == "Item 7 is being changed"
    assert body["retry_after"] == 3


async def test_unexpected_error_is_500_problem_without_internals(client):
    response = await client.get("/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "secret" not in response.text
    assert "RuntimeError" not in body["detail"]
