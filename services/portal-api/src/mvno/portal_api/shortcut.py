"""Routes answered ahead of the middleware stack, for the requests that need none of it.

A portal refreshes "my lines" again and again with one token. Once that token is verified, such a
request needs no routing, dependency solving, body limit or send wrapper per layer. A route's
endpoint marked with :func:`at_once` names a reader that gives its arguments straight from the
request when it can (a token verified before, no body), or ``None``: the request then goes the
normal way, which verifies the token and gives every answer (401, 403, 413...). The route stays
declared once, in :mod:`mvno.portal_api.api`, and documented from its signature as usual.

A request answered here carries the same request id (as
:class:`~mvno.common.request_ids.RequestIdMiddleware` takes it) and, from the edge outside this
layer, the same security headers; the server telemetry does not see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from mvno.common.problems import Problem, problem_response
from mvno.common.request_ids import REQUEST_ID_HEADER, take_request_id

__all__ = ["AtOnceReader", "Shortcut", "at_once"]

AtOnceReader = Callable[[Request], Awaitable[dict[str, Any] | None]]
"""The endpoint's arguments from a request it can read at once, or ``None``; a refusal (a rate
limit, say) is a raised :class:`~mvno.common.problems.Problem`."""
F = TypeVar("F", bound=Callable[..., Awaitable[Response]])

_READER = "__portal_at_once_reader__"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


def at_once(reader: AtOnceReader) -> Callable[[F], F]:
    """Mark a route's endpoint (one returning its :class:`Response` itself) to be answered by
    :class:`Shortcut` whenever ``reader`` gives its arguments."""

    def mark(endpoint: F) -> F:
        setattr(endpoint, _READER, reader)
        return endpoint

    return mark


class Shortcut:
    """The ASGI layer answering the marked endpoints of ``routes`` (see :func:`at_once`)."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self._served: dict[tuple[str, str], tuple[AtOnceReader, Callable[..., Any]]] = {}
        for route in routes:
            reader = getattr(getattr(route, "endpoint", None), _READER, None)
            if isinstance(route, APIRoute) and reader is not None:
                for method in route.methods or ():
                    self._served[(method, route.path)] = (reader, route.endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = (
            self._served.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if served is None:
            await self.app(scope, receive, send)
            return
        reader, endpoint = served
        try:
            arguments = await reader(Request(scope, receive))
        except Problem as problem:
            request_id = take_request_id(scope)
            response: Response = problem_response(
                status=problem.status,
                slug=problem.slug,
                detail=problem.detail,
                instance=scope["path"],
                headers=problem.headers,
            )
        else:
            if arguments is None:
                await self.app(scope, receive, send)
                return
            request_id = take_request_id(scope)  # before the endpoint runs, for its log lines
            response = await endpoint(**arguments)
        response.raw_headers.append((_REQUEST_ID, request_id))
        await response(scope, receive, send)
