"""HTTP routes of the orders service: parse, hand over to a handler, map the result.

Channels call with client-credential tokens: ``orders:write`` places and cancels orders, and a
client reads the orders it placed; ``orders:read`` (portal-api, staff tools) reads every order.
The product inventory (TMF637, the subscriptions orders created) is read with ``inventory:read``
or ``orders:read``; a line's eSIM activation code only with ``inventory:secrets``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import StringConstraints, TypeAdapter
from pydantic_core import to_json

from mvno.common.auth.dependencies import CurrentPrincipal, require_scopes
from mvno.common.auth.tokens import Principal
from mvno.common.direct import DirectRoute, header, json_body, read_by
from mvno.common.problems import Problem, problem_responses
from mvno.common.tmf import (
    ID_PATTERN,
    PAGE_HEADERS,
    PathId,
    dump,
    members_of,
    page_headers,
    parse_fields,
    select_fields,
)
from mvno.orders import handlers
from mvno.orders.domain.model import Channel, Order, OrderState
from mvno.orders.handlers import OrdersContext
from mvno.orders.repository import OrderFilter
from mvno.orders.schemas import (
    INVENTORY_PREFIX,
    PREFIX,
    CancelCreate,
    CancelRead,
    EsimActivationRead,
    OrderCreate,
    OrderDocumentsUpdate,
    OrderRead,
    ProductRead,
    RefRead,
    order_answer,
    order_answer_json,
)

router = APIRouter(prefix=PREFIX, route_class=DirectRoute)
inventory_router = APIRouter(prefix=INVENTORY_PREFIX, tags=["product inventory"])

_write = require_scopes("orders:write")
Writer = Annotated[Principal, Depends(_write)]
_KEY_MAX_LENGTH = 255
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=_KEY_MAX_LENGTH,
        description="Unique per order attempt; a retry with the same key and body replays the answer.",
    ),
]
_KEY = TypeAdapter(Annotated[str, StringConstraints(max_length=_KEY_MAX_LENGTH)])


async def get_context(request: Request) -> OrdersContext:
    context: OrdersContext = request.app.state.orders
    return context


Context = Annotated[OrdersContext, Depends(get_context)]


def _client(principal: Principal) -> str:
    return principal.client_id or principal.subject


def _readable_by(principal: Principal) -> str | None:
    """The client whose orders this caller may read; None for every order."""
    return None if principal.has_scopes("orders:read") else _client(principal)


async def _place_order_arguments(request: Request) -> dict[str, Any]:
    """What ``place_order`` declares, read without FastAPI's dependency solving (the intake is
    the hottest route: :mod:`mvno.common.direct`): the caller first, then the header and body."""
    return {
        "principal": await _write(request),
        "idempotency_key": header(request, "Idempotency-Key", _KEY),
        "body": await json_body(request, OrderCreate),
        "context": await get_context(request),
    }


@router.post(
    "/productOrder",
    status_code=201,
    response_model=OrderRead,
    responses=problem_responses(400, 401, 403, 409, 413, 422, 503),
    summary="Place an order (Idempotency-Key required)",
)
@read_by(_place_order_arguments)
async def place_order(
    body: OrderCreate,
    principal: Writer,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if not idempotency_key or not idempotency_key.strip():
        raise Problem(
            400,
            "idempotency-key-missing",
            "Send an Idempotency-Key header, unique per order attempt, so a retry cannot "
            "place the order twice.",
        )
    channel_claim = principal.claims.get("channel")
    if channel_claim is not None and channel_claim != body.channel[0].id:
        raise Problem(403, "forbidden", "This client may not sell on that channel.")
    answer = await handlers.place_order(
        context,
        body.to_command(_client(principal)),
        idempotency_key=idempotency_key,
        request_hash=body.fingerprint(),
        earlier_hash=body.earlier_fingerprint,
        render=order_answer_json,
    )
    return Response(
        answer.body,
        status_code=answer.status,
        media_type="application/json",
        headers={
            "Location": f"{PREFIX}/productOrder/{answer.order_id}",
            "Idempotency-Key": idempotency_key,
        },
    )


@router.get(
    "/productOrder/{order_id}",
    response_model=OrderRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="Get an order",
)
async def get_order(order_id: PathId, principal: CurrentPrincipal, context: Context) -> Response:
    _need_any_scope(principal)
    async with context.unit_of_work() as uow:
        order = await uow.orders.get_order(order_id=order_id)
    readable_by = _readable_by(principal)
    if order is None or (readable_by is not None and order.client_id != readable_by):
        raise Problem(404, "not-found", f"there is no order {order_id}")
    return _order_response(order)


@router.get(
    "/productOrder",
    response_model=list[OrderRead],
    responses={200: {"headers": PAGE_HEADERS}, **problem_responses(400, 401, 403, 422)},
    summary="List orders, newest first",
)
async def list_orders(
    principal: CurrentPrincipal,
    context: Context,
    state: Annotated[OrderState | None, Query()] = None,
    channel: Annotated[Channel | None, Query(alias="channel.id")] = None,
    customer_id: Annotated[
        str | None, Query(alias="relatedParty.id", max_length=64, pattern=ID_PATTERN)
    ] = None,
    since: Annotated[datetime | None, Query(alias="orderDate.gte")] = None,
    until: Annotated[datetime | None, Query(alias="orderDate.lt")] = None,
    fields: Annotated[str | None, Query(description="Comma-separated members to return")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    _need_any_scope(principal)
    for instant in (since, until):
        if instant is not None and instant.tzinfo is None:
            raise Problem(400, "bad-request", "order dates need a time zone, e.g. ...T10:00:00Z")
    selected = parse_fields(fields, _ALLOWED_FIELDS)
    async with context.unit_of_work() as uow:
        total, found = await uow.orders.list_orders(
            where=OrderFilter(
                state=state, channel=channel, customer_id=customer_id, since=since, until=until
            ),
            client_id=_readable_by(principal),
            offset=offset,
            limit=limit,
        )
    items = [select_fields(order_answer(order), selected) for order in found]
    return Response(
        to_json(items), media_type="application/json", headers=page_headers(total, len(items))
    )


@router.patch(
    "/productOrder/{order_id}",
    response_model=OrderRead,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Send corrected RICA details for an order pending on them",
)
async def resubmit_documents(
    order_id: PathId,
    body: Annotated[OrderDocumentsUpdate, Body(media_type="application/merge-patch+json")],
    principal: Writer,
    context: Context,
) -> Response:
    order = await handlers.resubmit_documents(
        context,
        order_id=order_id,
        client_id=_readable_by(principal),
        rica=body.customer.to_domain(),
    )
    return _order_response(order)


@router.post(
    "/cancelProductOrder",
    status_code=201,
    response_model=CancelRead,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Cancel an order that provisioning has not started on",
)
async def cancel_order(body: CancelCreate, principal: Writer, context: Context) -> JSONResponse:
    order = await handlers.cancel_order(
        context, order_id=body.product_order.id, client_id=_readable_by(principal)
    )
    answer = CancelRead(
        id=f"cancel-{order.id}",
        product_order=RefRead(id=order.id, href=f"{PREFIX}/productOrder/{order.id}"),
        cancellation_reason=body.cancellation_reason,
        effective_cancellation_date=order.completion_date,
    )
    return JSONResponse(dump(answer), status_code=201)


@inventory_router.get(
    "/product",
    response_model=list[ProductRead],
    responses={200: {"headers": PAGE_HEADERS}, **problem_responses(401, 403, 422)},
    summary="List subscriptions (products), oldest first",
)
async def list_products(
    principal: CurrentPrincipal,
    context: Context,
    customer_id: Annotated[
        str | None, Query(alias="relatedParty.id", max_length=64, pattern=ID_PATTERN)
    ] = None,
    status: Annotated[Literal["active", "suspended", "terminated"] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    _need_inventory_scope(principal)
    async with context.unit_of_work() as uow:
        total, lines = await uow.inventory.list_subscriptions(
            customer_id=customer_id, status=status, offset=offset, limit=limit
        )
    items = [dump(ProductRead.of(line)) for line in lines]
    return JSONResponse(items, headers=page_headers(total, len(items)))


@inventory_router.get(
    "/product/{product_id}",
    response_model=ProductRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="Get a subscription (product)",
)
async def get_product(
    product_id: PathId, principal: CurrentPrincipal, context: Context
) -> JSONResponse:
    _need_inventory_scope(principal)
    async with context.unit_of_work() as uow:
        line = await uow.inventory.get_subscription(subscription_id=product_id)
    if line is None:
        raise Problem(404, "not-found", f"there is no product {product_id}")
    return JSONResponse(dump(ProductRead.of(line)))


@inventory_router.get(
    "/product/{product_id}/esimActivation",
    response_model=EsimActivationRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="The eSIM activation code of a line (scope inventory:secrets)",
)
async def get_esim_activation(
    product_id: PathId,
    principal: Annotated[Principal, Depends(require_scopes("inventory:secrets"))],
    context: Context,
) -> JSONResponse:
    try:
        code = await handlers.esim_activation_code(context, subscription_id=product_id)
    except handlers.SubscriptionNotFound:
        raise Problem(404, "not-found", f"there is no eSIM line {product_id}") from None
    return JSONResponse(
        dump(EsimActivationRead(activation_code=code)),
        headers={"Cache-Control": "no-store"},
    )


_ALLOWED_FIELDS = members_of(OrderRead)


def _order_response(order: Order) -> Response:
    return Response(order_answer_json(order), media_type="application/json")


def _need_any_scope(principal: Principal) -> None:
    if not (principal.has_scopes("orders:read") or principal.has_scopes("orders:write")):
        raise Problem(403, "forbidden", "This needs the scope orders:read or orders:write.")


def _need_inventory_scope(principal: Principal) -> None:
    if not (principal.has_scopes("inventory:read") or principal.has_scopes("orders:read")):
        raise Problem(403, "forbidden", "This needs the scope inventory:read or orders:read.")
