"""Every error answer is ``application/problem+json`` (RFC 9457) with a stable ``type``.

The body also carries TM Forum's error fields (``code``, ``reason``, ``message``) as extension
members, so TMF clients and generic HTTP clients read the same answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:mvno:problem:"

_log = logging.getLogger(__name__)

# Stable slugs for the statuses Starlette raises by itself (unknown route, wrong method, ...).
_SLUG_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}


def problem_type(slug: str) -> str:
    """The ``type`` URI for a problem slug, e.g. ``urn:mvno:problem:not-found``."""
    return PROBLEM_TYPE_PREFIX + slug


class Problem(Exception):
    """An error a handler or route raises to answer with a problem document.

    ``slug`` becomes the stable ``type``; ``extensions`` are extra members of the body.
    """

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        self.status = status
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions
        super().__init__(detail or self.title)


def problem_body(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str | None,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    # TM Forum Error fields, so TMF clients read the same answer.
    body["code"] = slug
    body["reason"] = title
    body["message"] = detail or title
    if extensions:
        body.update(extensions)
    return body


def problem_response(
    *,
    status: int,
    slug: str,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """Build a problem+json response."""
    body = problem_body(
        status=status,
        slug=slug,
        title=title or HTTPStatus(status).phrase,
        detail=detail,
        instance=instance,
        extensions=extensions,
    )
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_CONTENT_TYPE
    )


def _json_pointer(location: Sequence[int | str]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in location]
    return "#/" + "/".join(parts)


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Turn pydantic/FastAPI errors into ``{pointer, field, detail}`` entries, one per field."""
    result = []
    for error in errors:
        location = tuple(error.get("loc", ()))
        result.append(
            {
                "pointer": _json_pointer(location),
                "field": ".".join(str(part) for part in location[1:])
                or str(location[0] if location else ""),
                "in": str(location[0]) if location else "body",
                "detail": str(error.get("msg", "invalid value")),
            }
        )
    return result


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    if status == 404 and detail is None:
        detail = f"No resource at {request.url.path}"
    if status == 405 and detail is None:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        status=status,
        slug=_SLUG_BY_STATUS.get(status, f"http-{status}"),
        title=phrase,
        detail=detail,
        instance=request.url.path,
        headers=exc.headers,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    fields = ", ".join(error["field"] for error in errors)
    return problem_response(
        status=422,
        slug="validation-error",
        title="Your request is not valid",
        detail=f"Check these fields: {fields}" if fields else "The request could not be read",
        instance=request.url.path,
        extensions={"errors": errors},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        status=500,
        slug="internal-error",
        detail="Something went wrong on our side; it has been logged.",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json: our own, Starlette's and validation ones."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)


class ProblemDocument(BaseModel):
    """The shape of every error answer, for OpenAPI documents (see :func:`problem_responses`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str
    reason: str
    message: str
    errors: list[dict[str, Any]] | None = None
    """For 422: one entry per offending field (``pointer``, ``field``, ``detail``)."""


_RESPONSE_DESCRIPTIONS = {
    400: "The request cannot be served as asked",
    401: "A bearer token is missing or invalid",
    403: "The token lacks the scope or role this needs",
    404: "No such resource",
    409: "The resource's current state refuses this",
    413: "The body is too large",
    422: "The request is not valid; errors lists each field",
    429: "Too many requests; see Retry-After",
    503: "A dependency is unavailable; try again shortly",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem+json answers with these statuses.

    Pass it to a route's ``responses=`` so the document says what the service really answers
    (FastAPI's own 422 entry would claim ``application/json``).
    """
    # Inline, not a model: FastAPI would also list the model under the route's own media type.
    schema = ProblemDocument.model_json_schema()
    return {
        status: {
            "description": _RESPONSE_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": schema}},
        }
        for status in statuses
    }
