"""The server side of an HTTP request in OpenTelemetry: one span and the HTTP server metrics.

What FastAPI's own telemetry (``FastAPI(telemetry=...)``) makes, by the same semantic
conventions: a ``SERVER`` span named ``{method} {route}`` continuing the caller's trace (X-Ray
header, through the global propagator) and current while the request runs, so that logs and
client spans carry its ids; ``http.server.request.duration`` and ``http.server.active_requests``.
It is a plain ASGI middleware, and the span's many attributes are built only when the span is
recorded, and nothing else is added per request: FastAPI's telemetry built them, walked the
app's middleware stack and wrapped the request in more layers on every request, sampled or not.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from time import perf_counter
from typing import Any

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DURATION_BUCKETS", "ServerTelemetryMiddleware"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""The semantic conventions' advice for ``http.server.request.duration`` (seconds)."""

_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
_SENSITIVE_QUERY = (b"X-Amz-Signature", b"X-Amz-Credential", b"X-Amz-Security-Token", b"sig")


class _Headers(Getter[list[tuple[bytes, bytes]]]):
    """The propagator's view of the request headers (the ASGI list, names in lower case)."""

    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for header, value in carrier if header == name]
        return values or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [header.decode("latin-1") for header, _ in carrier]


_GETTER = _Headers()


class ServerTelemetryMiddleware:
    """Trace and measure every HTTP request of ``app`` but those ``exclude`` names."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        exclude: Callable[[MutableMapping[str, Any]], bool] = lambda scope: False,
    ) -> None:
        self.app = app
        self._tracer = tracer_provider.get_tracer("mvno.http.server")
        meter = meter_provider.get_meter("mvno.http.server")
        self._duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._active = meter.create_up_down_counter(
            "http.server.active_requests",
            unit="{request}",
            description="Number of active HTTP server requests.",
        )
        self._exclude = exclude

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exclude(scope):
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "_OTHER"
        span_method = method if method != "_OTHER" else "HTTP"
        active = {"http.request.method": method, "url.scheme": scope.get("scheme", "http")}
        self._active.add(1, active)
        started = perf_counter()
        parent = propagate.extract(scope["headers"], getter=_GETTER)
        span = self._tracer.start_span(span_method, context=parent, kind=SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            context.detach(token)
            attributes: dict[str, Any] = {
                **active,
                "network.protocol.version": scope.get("http_version", "1.1"),
            }
            route = getattr(scope.get("route"), "path_format", None)
            if route is not None:
                attributes["http.route"] = scope.get("root_path", "").rstrip("/") + route
            if status:
                attributes["http.response.status_code"] = status[0]
            if error is None and (not status or status[0] >= 500):
                error = str(status[0]) if status else "incomplete_response"
            if error is not None:
                attributes["error.type"] = error
            if span.is_recording():
                _describe(span, scope, span_method, attributes)
            self._duration.record(max(0.0, perf_counter() - started), attributes)
            self._active.add(-1, active)
            span.end()


def _describe(span: trace.Span, scope: Scope, span_method: str, attributes: dict[str, Any]) -> None:
    """A recorded span's name and attributes (an unrecorded one keeps none of them)."""
    route = attributes.get("http.route")
    span.update_name(f"{span_method} {route}" if route else span_method)
    details = {**attributes, "url.path": scope["path"]}
    if attributes["http.request.method"] == "_OTHER":
        details["http.request.method_original"] = scope["method"]
    if query := scope.get("query_string"):
        details["url.query"] = _redacted(query)
    server = scope.get("server")
    if server:
        details["server.address"], details["server.port"] = server[0], server[1]
    span.set_attributes(details)
    if "error.type" in attributes:
        span.set_status(StatusCode.ERROR)


def _redacted(query: bytes) -> str:
    parts = []
    for part in query.split(b"&"):
        name, equals, _value = part.partition(b"=")
        parts.append(name + equals + b"REDACTED" if name in _SENSITIVE_QUERY else part)
    return b"&".join(parts).decode("latin-1")
