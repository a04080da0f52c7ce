"""Request ids: taken from ``X-Request-ID`` when a caller sends a sane one, made otherwise.

The id goes into every log line of the request (through ``asgi_correlation_id``'s context variable
and log filter) and back to the caller in the same header. A plain ASGI middleware rather than
``asgi_correlation_id``'s own: that one parses every header twice through Starlette's header
classes on every request, a cost out of proportion to a small JSON answer.
"""

from __future__ import annotations

import re
import uuid

from asgi_correlation_id import correlation_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode()
_SANE = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")
"""What a caller's id may look like: long enough to be unique, short and plain enough to log."""


def take_request_id(scope: Scope) -> bytes:
    """The request's id (the caller's sane ``X-Request-ID`` or a new one), set for its log lines;
    encoded for the answer's header. For a middleware that answers a request itself, before
    :class:`RequestIdMiddleware` would see it."""
    request_id = None
    for name, value in scope["headers"]:
        if name == _HEADER:
            if _SANE.match(value):
                request_id = value.decode("ascii")
            break
    if request_id is None:
        request_id = uuid.uuid4().hex
    correlation_id.set(request_id)
    return request_id.encode("ascii")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoded = take_request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (_HEADER, encoded)]
            await send(message)

        await self.app(scope, receive, send_with_id)
