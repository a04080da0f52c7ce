"""JSON logs that carry the service name, the request id and the X-Ray trace id."""

from __future__ import annotations

import logging
import sys
from typing import Any

from asgi_correlation_id import CorrelationIdFilter
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter


def xray_trace_id(trace_id: int) -> str:
    """Format an OpenTelemetry trace id the way X-Ray shows it: ``1-<8 hex time>-<24 hex>``."""
    hex_id = f"{trace_id:032x}"
    return f"1-{hex_id[:8]}-{hex_id[8:]}"


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` of the current span to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = xray_trace_id(context.trace_id)
            record.span_id = f"{context.span_id:016x}"
        else:
            record.trace_id = None
            record.span_id = None
        return True


class _ServiceFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        # uvicorn adds an ANSI-coloured copy of its message; JSON readers want only one.
        record.__dict__.pop("color_message", None)
        return True


def configure_logging(
    service: str, level: str = "INFO", *, stream: Any = None, access_log: bool = False
) -> None:
    """Send every log record (ours, uvicorn's, libraries') as one JSON line to stdout.

    uvicorn writes its per-request access line only while ``uvicorn.access`` has a handler; it
    gets ours only when ``access_log`` asks for it.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(_ServiceFilter(service))
    handler.addFilter(CorrelationIdFilter(uuid_length=32, default_value=None))
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s %(trace_id)s",
            rename_fields={"levelname": "level", "name": "logger", "correlation_id": "request_id"},
            timestamp="time",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn installs its own handlers; route its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = name != "uvicorn.access" or access_log
    for noisy in ("botocore", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
