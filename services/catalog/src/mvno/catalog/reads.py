"""The read side: rendered pages cached per replica, with ETags and cache headers.

Portals read the catalogue far more than staff write it, so a rendered answer is kept for a few
seconds and served without touching the database. A write anywhere drops every replica's cache at
its commit: the audit trail's trigger raises ``NOTIFY catalog_changed``, which each replica
listens for. While that listener is down the cache is bypassed, so an answer is never staler
than the TTL (which also bounds how late a ``validFor`` boundary shows).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from fastapi import Request, Response
from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from mvno.catalog.tables import CHANGE_CHANNEL
from mvno.common.notifications import follow
from mvno.common.tmf import page_headers

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    """Items of a list (already rendered to JSON-ready dicts) and how many matched in all."""

    items: Sequence[Mapping[str, Any]]
    total: int


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str
    headers: Mapping[str, str]
    gzipped: bytes | None = None
    """The body compressed once when rendered, for clients that accept gzip (most do)."""


GZIP_FROM_BYTES = 1024
"""Smaller bodies are sent as they are: compressing them saves less than it costs."""


def render(body: bytes, headers: Mapping[str, str]) -> Rendered:
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    gzipped = (
        gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= GZIP_FROM_BYTES else None
    )
    return Rendered(body, etag, headers, gzipped)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (RFC 9110 §12.5.3: a q-value of 0 refuses it)."""
    for coding in (accept_encoding or "").split(","):
        name, _, parameters = coding.partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        weight = parameters.strip().removeprefix("q=").strip() if parameters else "1"
        try:
            return float(weight) > 0
        except ValueError:
            return False
    return False


class ReadCache:
    """Rendered answers by request target, dropped on every catalogue change."""

    def __init__(self, *, ttl_seconds: float, max_entries: int = 4096) -> None:
        self._entries: TTLCache[str, Rendered] = TTLCache(
            maxsize=max_entries, ttl=ttl_seconds, timer=time.monotonic
        )
        self.listening = False
        self.enabled = ttl_seconds > 0

    def get(self, key: str) -> Rendered | None:
        if not (self.enabled and self.listening):
            return None
        return self._entries.get(key)

    def put(self, key: str, rendered: Rendered) -> None:
        if self.enabled and self.listening:
            self._entries[key] = rendered

    def clear(self) -> None:
        self._entries.clear()

    async def follow_changes(self, dsn: str, stop: asyncio.Event) -> None:
        """LISTEN for catalogue changes until ``stop``; reconnect after a lost connection."""
        await follow(dsn, CHANGE_CHANNEL, changed=self.clear, listening=self._listening, stop=stop)

    def _listening(self, listening: bool) -> None:
        self.listening = listening


def cache_key(path: str, query_string: bytes) -> str:
    """The same key for the same request target, whatever the order of its query parameters."""
    return path + "?" + "&".join(sorted(query_string.decode("latin-1").split("&")))


class Reader:
    """Serve a read through the cache, answering conditional requests with 304."""

    def __init__(self, cache: ReadCache, *, max_age: int) -> None:
        self.cache = cache
        self.cache_control = f"public, max-age={max_age}"

    async def respond(
        self, request: Request, build: Callable[[], Awaitable[Page | Mapping[str, Any]]]
    ) -> Response:
        key = cache_key(request.url.path, request.scope["query_string"])
        rendered = self.cache.get(key)
        if rendered is None:
            result = await build()
            if isinstance(result, Page):
                body = to_json(list(result.items))
                headers = page_headers(result.total, len(result.items))
            else:
                body = to_json(result)
                headers = {}
            rendered = render(body, headers)
            self.cache.put(key, rendered)
        headers = {
            **rendered.headers,
            "ETag": rendered.etag,
            "Cache-Control": self.cache_control,
            "Vary": "Accept-Encoding",
        }
        if _matches(request.headers.get("if-none-match"), rendered.etag):
            return Response(status_code=304, headers=headers)
        if rendered.gzipped is not None and accepts_gzip(request.headers.get("accept-encoding")):
            headers["Content-Encoding"] = "gzip"
            return Response(rendered.gzipped, media_type="application/json", headers=headers)
        return Response(rendered.body, media_type="application/json", headers=headers)


class CachedReadsMiddleware:
    """Answer a GET whose rendering is cached before routing, parameter parsing and validation.

    Only what :class:`Reader` rendered after a successful, validated read is ever cached, so a
    hit needs none of that again. It sits inside the plumbing middleware (request ids, size
    limit, telemetry), which every answer still passes through.
    """

    def __init__(self, app: ASGIApp, *, reader: Reader) -> None:
        self.app = app
        self.reader = reader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        rendered = self.reader.cache.get(cache_key(scope["path"], scope["query_string"]))
        if rendered is None:
            await self.app(scope, receive, send)
            return
        if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        headers = [
            *((name.lower().encode(), value.encode()) for name, value in rendered.headers.items()),
            (b"etag", rendered.etag.encode()),
            (b"cache-control", self.reader.cache_control.encode()),
            (b"vary", b"Accept-Encoding"),
        ]
        if _matches(if_none_match, rendered.etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = rendered.body
        if rendered.gzipped is not None and accepts_gzip(accept_encoding):
            body = rendered.gzipped
            headers.append((b"content-encoding", b"gzip"))
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    # Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates
