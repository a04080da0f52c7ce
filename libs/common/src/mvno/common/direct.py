"""Routes read by a function of their own instead of FastAPI's per-request dependency solving.

For the few routes whose cost per request matters most (the order intake). Such a route is
declared as usual, on a router whose ``route_class`` is :class:`DirectRoute`, so OpenAPI
documents it from its endpoint's signature like any other (body schema, headers, security);
:func:`read_by` names the function that turns a request into the endpoint's arguments. That
function takes the place of FastAPI's generic dependency solving and body handling, a large
share of a small route's CPU; it must check what
the signature declares, and :func:`json_body` and :func:`header` give FastAPI's own answers
(422 ``RequestValidationError`` with the same ``loc``) for what they refuse. The endpoint
returns its :class:`~starlette.responses.Response` itself: no response model is applied.
Exception handlers and middleware (the server telemetry among them) see the request as for
any route.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

__all__ = ["DirectRoute", "header", "json_body", "read_by"]

Reader = Callable[[Request], Awaitable[dict[str, Any]]]
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_READER = "__mvno_direct_reader__"


def read_by(reader: Reader) -> Callable[[F], F]:
    """Mark an endpoint of a :class:`DirectRoute` router: ``reader(request)`` gives its keyword
    arguments (raising a problem or ``RequestValidationError`` for a request it refuses)."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _READER, reader)
        return endpoint

    return mark


class DirectRoute(APIRoute):
    """An ``APIRoute`` whose marked endpoint (:func:`read_by`) is called with its reader's
    arguments; an unmarked endpoint is served by FastAPI as usual."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        reader: Reader | None = getattr(self.endpoint, _READER, None)
        if reader is None:
            return super().get_route_handler()
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(**await reader(request))
            return response

        return handle


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model``, refused as FastAPI refuses a body parameter.

    Validated straight from the bytes (no ``dict`` in between). A body that is missing, not
    declared as JSON (``application/json`` or ``+json``), not JSON or not valid gets a 422 with
    the errors under ``("body", ...)``.
    """
    raw = await request.body()
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        if _is_json(request.headers.get("content-type")):
            return model.model_validate_json(raw)
        # FastAPI validates an undeclared body as the bytes it is: the same answer here.
        return model.model_validate(raw)
    except ValidationError as error:
        if error.errors()[0]["type"] == "json_invalid":
            _refuse_as_json(raw)
        raise RequestValidationError(_located(("body",), error)) from None


def _refuse_as_json(raw: bytes) -> None:
    """FastAPI's answer to a body that is not JSON: the decoder's position and message."""
    try:
        json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        position, message = (
            (error.pos, error.msg) if isinstance(error, json.JSONDecodeError) else (0, str(error))
        )
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", position),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": message},
                }
            ]
        ) from None


def header(request: Request, name: str, adapter: TypeAdapter[T]) -> T | None:
    """Header ``name`` validated by ``adapter``, or None when absent; refused as FastAPI refuses
    a ``Header`` parameter (422, errors under ``("header", name)``)."""
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        raise RequestValidationError(_located(("header", name), error)) from None


def _located(prefix: tuple[str, ...], error: ValidationError) -> list[dict[str, Any]]:
    return [{**e, "loc": prefix + tuple(e["loc"])} for e in error.errors(include_url=False)]


def _is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters aside (FastAPI's rule)."""
    if not content_type:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    maintype, _, subtype = media_type.partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))
