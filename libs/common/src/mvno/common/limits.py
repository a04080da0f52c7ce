"""Request body size limit: a client cannot make a service buffer an unbounded body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mvno.common.problems import problem_response


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Answers 413 problem+json when a request body is larger than ``max_bytes``.

    A declared Content-Length is refused before the body is read; a chunked body is counted as it
    arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is None and not chunked:
            # Neither Content-Length nor Transfer-Encoding: an HTTP/1.1 request without a body
            # (every GET of the portal's screens), nothing to count; no wrappers on its answer.
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not chunked:
                # The server reads exactly the declared length (HTTP/1.1 framing: what a client
                # sends past it is its next request), so there is nothing to count either.
                await self.app(scope, receive, send)
                return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            status=413,
            slug="payload-too-large",
            detail=f"The request body is larger than {self.max_bytes} bytes",
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
