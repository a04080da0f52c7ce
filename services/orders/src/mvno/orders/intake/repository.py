"""The intake's statements on plain asyncpg connections (:class:`mvno.common.db.StatementPool`):
placing an order is one statement, its own transaction, sent without SQLAlchemy's cost per
statement and per checkout. A statement's span is made only in a recorded trace."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mvno.common.bus.envelope import OutgoingEvent
from mvno.common.crypto import Sealed
from mvno.common.db import StatementPool, json_text, outbox_json
from mvno.common.tracing import client_spans_when_sampled
from mvno.orders.domain.model import Order
from mvno.orders.intake.statements import ANSWER_OF_KEY, PLACE_ORDER_ONCE


@dataclass(frozen=True)
class IdempotencyRecord:
    request_hash: str
    response_status: int
    response_body: str
    """The answer's JSON text, as it was stored."""


@dataclass(frozen=True)
class Placement:
    """What :meth:`OrderIntake.place_once` did: placed the order, found the key used before
    (``earlier``), or neither (another request with the same key holds it right now)."""

    placed: bool
    earlier: IdempotencyRecord | None = None
    """The key was used before: what that request answered."""


class OrderIntake:
    def __init__(self, pool: StatementPool) -> None:
        self._pool = pool

    async def place_once(
        self,
        *,
        order: Order,
        sealed: Sealed | None,
        key: str,
        request_hash: str,
        body: str,
        expires_at: datetime,
        events: Sequence[OutgoingEvent],
        notifications: list[dict[str, Any]],
        start_by: datetime,
        trace_context: str | None = None,
    ) -> Placement:
        """Write ``order``, its answer ``body`` (JSON text), its ``events`` and the webhooks it
        owes under ``key``, unless the key is taken; its provisioning timer fires at
        ``start_by`` unless a worker has taken the order by then. ``trace_context`` (a W3C
        ``traceparent``) is kept with the order: its saga's steps continue that trace."""
        personal_data = (
            json_text(
                {name: base64.b64encode(blob).decode() for name, blob in sealed.fields.items()}
            )
            if sealed
            else None
        )
        items = json_text(
            [
                {
                    "item_id": item.item_id,
                    "action": item.action,
                    "change": item.change,
                    "offering_id": item.offering_id,
                    "offering_name": item.offering_name,
                    "sim_kind": item.sim_kind,
                    "subscription_id": item.subscription_id,
                    "port_in_msisdn": item.port_in_msisdn,
                    "state": str(item.state),
                    "prices": item.prices,
                }
                for item in order.items
            ]
        )
        async with self._pool.acquire() as connection:
            with client_spans_when_sampled():
                row = await PLACE_ORDER_ONCE.fetchrow(
                    connection,
                    client_id=order.client_id,
                    key=key,
                    request_hash=request_hash,
                    answer=body,
                    order_id=order.id,
                    order_date=order.order_date,
                    expires_at=expires_at,
                    customer_id=order.customer_id,
                    channel=order.channel,
                    external_id=order.external_id,
                    state=str(order.state),
                    sequence=order.sequence,
                    personal_data=personal_data,
                    personal_data_key=sealed.encrypted_data_key if sealed else None,
                    items=items,
                    outbox=outbox_json(events),
                    webhooks=json_text(notifications),
                    start_by=start_by,
                    trace_context=trace_context,
                )
                if row is None:
                    raise RuntimeError("placing an order answered no row")
                if not row["held"]:
                    return Placement(placed=False)
                if row["request_hash"] is not None:
                    earlier = IdempotencyRecord(
                        row["request_hash"], row["response_status"], row["response_body"]
                    )
                    return Placement(placed=False, earlier=earlier)
                if row["items"]:
                    return Placement(placed=True)
                # The key was committed by another request after this statement's snapshot.
                return Placement(
                    placed=False,
                    earlier=await self._key(connection, client_id=order.client_id, key=key),
                )

    async def get_key(self, *, client_id: str, key: str) -> IdempotencyRecord | None:
        """What the request that used ``key`` before answered, if one did."""
        async with self._pool.acquire() as connection:
            with client_spans_when_sampled():
                return await self._key(connection, client_id=client_id, key=key)

    @staticmethod
    async def _key(
        connection: asyncpg.Connection, *, client_id: str, key: str
    ) -> IdempotencyRecord | None:
        row = await ANSWER_OF_KEY.fetchrow(connection, client_id=client_id, key=key)
        return None if row is None else IdempotencyRecord(*row)
