"""Webhooks to channels: owed in the order's own transaction, sent by a worker, signed, retried.

Enqueueing
    :func:`enqueue_notifications` writes one ``webhook_deliveries`` row per matching hub in the
    caller's transaction, so an order change and the notifications announcing it commit or roll
    back together: a channel never hears of a change that did not happen, nor misses one that did.

Sending
    :class:`DeliveryWorker` runs beside the API on every replica. It claims due rows with
    ``FOR UPDATE SKIP LOCKED`` and, in that same short transaction, counts the attempt and leases
    the row (``next_attempt_at`` moves past the attempt's deadline), then sends outside any
    transaction and records the outcome. A slow channel so holds neither a database connection
    nor a row lock for the length of its call (which would also block unregistering its hub),
    and no other worker takes the row while the attempt may still be running. A worker that dies
    mid-attempt leaves the row to be retried when its lease ends, so delivery is at least once:
    receivers deduplicate on ``webhook-id``, which is the same for every attempt of a webhook.

Retries
    A 2xx answer delivers the webhook. Anything else (another status, a redirect, a timeout, a
    refused connection) is a failed attempt, retried after an exponential, jittered, capped wait
    until the configured number of attempts is spent; then the webhook is marked ``failed``.
    Every attempt updates the delivery log (attempts, last status, last error).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry.trace import StatusCode
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from standardwebhooks import Webhook

from mvno.common.events.orders import OrderStateChanged
from mvno.common.http import create_http_client
from mvno.common.tracing import continued_span
from mvno.orders.hub.callbacks import check_callback
from mvno.orders.hub.domain import (
    STATE_CHANGE_EVENT,
    CallbackRefused,
    EventQuery,
    InvalidQuery,
    retry_delay,
    state_change_notification,
)
from mvno.orders.hub.repository import HubRepository
from mvno.orders.settings import OrdersSettings

_log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 30.0
"""How long past an attempt's deadline its row stays leased: room for recording the outcome."""

STOP_GRACE_SECONDS = 5.0
"""On shutdown, how long attempts under way may finish; the rest are retried after their lease."""

_ERROR_LIMIT = 500


async def enqueue_notifications(
    repository: HubRepository,
    event: OrderStateChanged,
    *,
    event_id: str,
    client_id: str,
    hubs: Iterable[tuple[str, str | None]] | None = None,
) -> int:
    """Owe ``event`` to every hub of ``client_id`` (the client that placed the order) whose
    query wants it, in the caller's transaction. A channel hears of its own orders only.

    ``hubs``, when given, are the client's hubs as the caller holds them (see
    :class:`~mvno.orders.hub.directory.HubDirectory`). The caller commits (with the order change
    ``event`` announces). ``event_id`` becomes the
    notification's ``eventId``; handling the same event id twice owes nothing more. Returns how
    many webhooks were newly owed. ``repository`` is the caller's unit of work's (``uow.hubs``).
    """
    if hubs is None:  # not known to the caller: read them
        hubs = await repository.queries(owner=client_id)
    owed = notifications(event, event_id=event_id, hubs=hubs)
    if not owed:
        return 0
    return await repository.add_deliveries(owed)


def notifications(
    event: OrderStateChanged, *, event_id: str, hubs: Iterable[tuple[str, str | None]]
) -> list[dict[str, Any]]:
    """The webhooks ``event`` owes to those of ``hubs`` (id, event query) that want it, as
    ``webhook_deliveries`` rows."""
    wanted = [hub_id for hub_id, query in hubs if _wants(query, event)]
    if not wanted:
        return []
    payload = state_change_notification(event, event_id=event_id, at=datetime.now(UTC))
    return [
        {
            "id": str(uuid.uuid4()),
            "subscription_id": hub_id,
            "event_id": event_id,
            "event_type": STATE_CHANGE_EVENT,
            "payload": payload,
        }
        for hub_id in wanted
    ]


def _wants(query: str | None, event: OrderStateChanged) -> bool:
    try:
        return EventQuery.parse(query).wants(event)
    except InvalidQuery:
        # Checked at registration; if the language ever narrows, an old hub must not make
        # order changes fail. It gets nothing until it registers again.
        _log.warning("a hub's stored query is no longer valid; it is skipped: %r", query)
        return False


# Due rows, soonest first, whose attempts are not spent; each claimed row's attempt is counted
# and the row leased in the same statement. Each comes with its order's trace context: the
# delivery is part of the order's trace.
_CLAIM = (
    text(
        """
        WITH due AS (
            SELECT id FROM webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at <= now() AND attempts < :max_attempts
            ORDER BY next_attempt_at
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        )
        UPDATE webhook_deliveries AS d
        SET attempts = d.attempts + 1,
            next_attempt_at = now() + make_interval(secs => :lease)
        FROM due, hub_subscriptions AS s
        WHERE d.id = due.id AND s.id = d.subscription_id
        RETURNING d.id, d.attempts, d.payload, s.callback, s.secret,
                  (SELECT o.trace_context FROM orders AS o
                    WHERE o.id = d.payload -> 'event' -> 'productOrder' ->> 'id') AS trace_context
        """
    )
).columns(payload=JSONB)
# A row whose last attempt was claimed but never recorded (its worker died) is still pending
# with its attempts spent once its lease ends: nothing will send it again, so it has failed.
_ABANDON = text(
    """
    UPDATE webhook_deliveries
    SET status = 'failed',
        last_error = 'no outcome was recorded for the last attempt (its worker stopped)'
    WHERE id IN (
        SELECT id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now() AND attempts >= :max_attempts
        FOR UPDATE SKIP LOCKED
    )
    """
)
# Both records apply only to the attempt this worker claimed: a row deleted with its hub, or
# taken over by another worker after its lease ended, is left alone.
_RECORD_DELIVERED = text(
    """
    UPDATE webhook_deliveries
    SET status = 'delivered', delivered_at = now(), last_status_code = :status_code,
        last_error = NULL
    WHERE id = :id AND attempts = :attempt AND status = 'pending'
    """
)
_RECORD_FAILED = text(
    """
    UPDATE webhook_deliveries
    SET status = :status, last_status_code = :status_code, last_error = :error,
        next_attempt_at = now() + make_interval(secs => :delay)
    WHERE id = :id AND attempts = :attempt AND status = 'pending'
    """
)


@dataclass(frozen=True)
class _Attempt:
    delivery_id: str
    number: int
    payload: dict[str, Any]
    callback: str
    secret: str
    trace_context: str | None = None

    @property
    def order_id(self) -> str | None:
        order = self.payload.get("event", {}).get("productOrder", {})
        return order.get("id") if isinstance(order, dict) else None


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DeliveryWorker:
    """Sends due webhooks until stopped; any number may run against one database."""

    def __init__(self, settings: OrdersSettings) -> None:
        self._settings = settings
        self._timeout = settings.hub_delivery_timeout_seconds
        self._lease = self._timeout + LEASE_MARGIN_SECONDS

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; survives database and network outages.

        Opens its own small connection pool and HTTP client, so webhooks never compete with
        API requests for connections.
        """
        engine = create_async_engine(
            self._settings.database_url, pool_size=2, max_overflow=3, pool_recycle=1800
        )
        try:
            async with create_http_client(
                self._settings, timeout=self._timeout, attempts=1
            ) as client:
                await self._deliver_until(stop, engine, client)
        finally:
            await engine.dispose()

    async def _deliver_until(
        self, stop: asyncio.Event, engine: AsyncEngine, client: httpx.AsyncClient
    ) -> None:
        concurrency = self._settings.hub_delivery_concurrency
        in_flight: set[asyncio.Task[None]] = set()
        slot_freed = asyncio.Event()

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            slot_freed.set()

        try:
            while not stop.is_set():
                slot_freed.clear()
                free = concurrency - len(in_flight)
                attempts = await self._claim(engine, limit=free) if free else []
                for attempt in attempts:
                    task = asyncio.create_task(self._deliver(engine, client, attempt))
                    in_flight.add(task)
                    task.add_done_callback(finished)
                if free and len(attempts) == free:
                    continue  # more may be due
                # Nothing more is due (wait for the next poll), or every slot is busy (wait for
                # one to free up, or the next poll).
                wake_on = [stop] if free else [stop, slot_freed]
                await _first_of(*wake_on, limit=self._settings.hub_poll_interval_seconds)
        finally:
            await _finish(in_flight)

    async def _claim(self, engine: AsyncEngine, *, limit: int) -> list[_Attempt]:
        max_attempts = self._settings.hub_delivery_attempts
        try:
            async with engine.begin() as connection:
                await connection.execute(_ABANDON, {"max_attempts": max_attempts})
                rows = await connection.execute(
                    _CLAIM, {"max_attempts": max_attempts, "limit": limit, "lease": self._lease}
                )
                return [
                    _Attempt(
                        row.id, row.attempts, row.payload, row.callback, row.secret,
                        row.trace_context,
                    )
                    for row in rows
                ]  # fmt: skip
        except Exception:
            _log.exception("claiming due webhooks failed; trying again at the next poll")
            return []

    async def _deliver(
        self, engine: AsyncEngine, client: httpx.AsyncClient, attempt: _Attempt
    ) -> None:
        try:
            with continued_span(
                "orders.webhook deliver",
                attempt.trace_context,
                order_id=attempt.order_id,
                attributes={
                    "mvno.webhook.id": attempt.delivery_id,
                    "mvno.webhook.try": attempt.number,
                },
            ) as span:
                outcome = await self._send(client, attempt)
                if not outcome.delivered:
                    span.set_status(StatusCode.ERROR, outcome.error or "not delivered")
            await self._record(engine, attempt, outcome)
        except Exception:
            # The row stays leased and is sent again after the lease: at least once, not lost.
            _log.exception("webhook %s: attempt %d failed", attempt.delivery_id, attempt.number)

    async def _send(self, client: httpx.AsyncClient, attempt: _Attempt) -> _Outcome:
        # The signature covers these exact bytes; the receiver verifies them before parsing.
        body = json.dumps(attempt.payload, separators=(",", ":"), ensure_ascii=False)
        sent_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "mvno-orders-webhooks",
            "webhook-id": attempt.delivery_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(attempt.secret).sign(attempt.delivery_id, sent_at, body),
        }
        try:
            async with asyncio.timeout(self._timeout):
                if self._settings.is_production:
                    await check_callback(attempt.callback, production=True)
                async with client.stream(
                    "POST", attempt.callback, content=body.encode(), headers=headers
                ) as response:
                    # Only the status matters: the body is never read, however large.
                    code = response.status_code
        except CallbackRefused as refused:
            return _Outcome(None, refused.message)
        except TimeoutError:
            return _Outcome(None, f"no answer within {self._timeout:g} s")
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            return _Outcome(None, f"{type(error).__name__}: {error}"[:_ERROR_LIMIT])
        if 200 <= code < 300:
            return _Outcome(code, None)
        return _Outcome(code, f"answered HTTP {code}")

    async def _record(self, engine: AsyncEngine, attempt: _Attempt, outcome: _Outcome) -> None:
        which = {"id": attempt.delivery_id, "attempt": attempt.number}
        async with engine.begin() as connection:
            if outcome.delivered:
                await connection.execute(
                    _RECORD_DELIVERED, which | {"status_code": outcome.status_code}
                )
                return
            spent = attempt.number >= self._settings.hub_delivery_attempts
            delay = retry_delay(
                attempt.number,
                base=self._settings.hub_retry_base_seconds,
                ceiling=self._settings.hub_retry_max_seconds,
            )
            await connection.execute(
                _RECORD_FAILED,
                which
                | {
                    "status": "failed" if spent else "pending",
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                    "delay": delay,
                },
            )
        if spent:
            _log.warning(
                "webhook %s failed for good after %d attempts: %s",
                attempt.delivery_id,
                attempt.number,
                outcome.error,
            )


async def _first_of(*events: asyncio.Event, limit: float) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _finish(in_flight: set[asyncio.Task[None]]) -> None:
    if not in_flight:
        return
    _, unfinished = await asyncio.wait(set(in_flight), timeout=STOP_GRACE_SECONDS)
    for task in unfinished:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*unfinished, return_exceptions=True)
