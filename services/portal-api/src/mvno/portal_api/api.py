"""HTTP routes of the portal-api service: parse, hand over to a handler, map the result."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from mvno.common.auth import CurrentPrincipal
from mvno.common.problems import Problem, problem_responses
from mvno.common.tmf import PAGE_HEADERS, PathId, page_headers
from mvno.portal_api import handlers, screens
from mvno.portal_api.schemas import (
    DemoSessionCreate,
    DemoSessionRead,
    EsimRead,
    LineRead,
    LinesRead,
    MeRead,
    OffersRead,
    OrdersRead,
    OrderView,
    PurchaseCreate,
    UsageRead,
)
from mvno.portal_api.screens import Context
from mvno.portal_api.shortcut import at_once

router = APIRouter(prefix="/portal/v1", tags=["portal"])

USAGE_DAYS_AT_MOST = 93


async def get_context(request: Request) -> Context:
    context: Context = request.app.state.portal
    return context


ContextDep = Annotated[Context, Depends(get_context)]


async def current_customer(principal: CurrentPrincipal, context: ContextDep) -> str:
    """The signed-in customer's id (the token's ``sub``), within their rate limit."""
    if not principal.has_scopes(context.settings.customer_scope):
        raise Problem(
            403,
            "forbidden",
            "This needs a customer's portal token.",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        )
    context.limits.check_request(principal.subject)
    return principal.subject


Customer = Annotated[str, Depends(current_customer)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="One per purchase attempt: a retry of the same attempt sends the same key "
        "and cannot buy twice. Made up by the portal when missing.",
    ),
]


def _attempt(key: str | None) -> str:
    return key or uuid.uuid4().hex


READ_ERRORS = problem_responses(401, 403, 404, 422, 429)


@router.get("/me", response_model=MeRead, responses=problem_responses(401, 403, 429))
async def me(customer: Customer) -> MeRead:
    return MeRead(customer_id=customer)


async def _my_lines_at_once(request: Request) -> dict[str, Any] | None:
    """``my_lines``' arguments for a bodiless request whose bearer token was verified before and
    has the portal scope, within the customer's limit (429 past it); ``None`` for any other
    request, which the normal way verifies and answers (401, 403, 413)."""
    context = await get_context(request)
    principal = None
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token and context.tokens is not None:
                principal = context.tokens.remembered(token.strip())
        elif name in _BODY_FRAMING:
            return None  # a body to count and limit: the body limit is on the normal way
    if principal is None or not principal.has_scopes(context.settings.customer_scope):
        return None
    context.limits.check_request(principal.subject)
    return {"customer": principal.subject, "context": context}


_BODY_FRAMING = (b"content-length", b"transfer-encoding")


@router.get(
    "/lines",
    response_model=LinesRead,
    responses=problem_responses(401, 403, 429),
    summary="My lines, each with its balance and bundles",
)
@at_once(_my_lines_at_once)
async def my_lines(customer: Customer, context: ContextDep) -> Response:
    # Rendered once, as documented by LinesRead (FastAPI would validate the model a second time).
    return Response(
        await screens.lines(context, customer_id=customer), media_type="application/json"
    )


@router.get("/lines/{line_id}", response_model=LineRead, responses=READ_ERRORS)
async def my_line(line_id: PathId, customer: Customer, context: ContextDep) -> LineRead:
    return await screens.line(context, customer_id=customer, line_id=line_id)


@router.get(
    "/lines/{line_id}/usage",
    response_model=UsageRead,
    responses=READ_ERRORS,
    summary="Usage of a line per day (the last 7 days unless asked)",
)
async def my_usage(
    line_id: PathId,
    customer: Customer,
    context: ContextDep,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> UsageRead:
    date_to = date_to or datetime.now(UTC).date()
    date_from = date_from or date_to - timedelta(days=6)
    if date_from > date_to:
        raise Problem(422, "validation-error", "from is after to.")
    if (date_to - date_from).days >= USAGE_DAYS_AT_MOST:
        raise Problem(422, "validation-error", f"Ask for {USAGE_DAYS_AT_MOST} days at most.")
    return await screens.usage(
        context, customer_id=customer, line_id=line_id, date_from=date_from, date_to=date_to
    )


@router.get(
    "/lines/{line_id}/esim",
    response_model=EsimRead,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
    summary="The eSIM activation code of my line, and its QR code",
)
async def my_esim(line_id: PathId, customer: Customer, context: ContextDep) -> JSONResponse:
    esim = await screens.esim(context, customer_id=customer, line_id=line_id)
    return JSONResponse(
        esim.model_dump(mode="json", by_alias=True),
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/lines/{line_id}/suspend",
    status_code=202,
    response_model=OrderView,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 429, 503),
    summary="Suspend a lost or stolen line",
)
async def suspend_line(
    line_id: PathId,
    customer: Customer,
    context: ContextDep,
    idempotency_key: IdempotencyKey = None,
) -> OrderView:
    context.limits.check_order(customer)
    return await handlers.suspend_line(
        context,
        customer_id=customer,
        subscription_id=line_id,
        idempotency_key=_attempt(idempotency_key),
    )


@router.get(
    "/orders",
    response_model=OrdersRead,
    responses={200: {"headers": PAGE_HEADERS}, **problem_responses(401, 403, 422, 429)},
    summary="My orders, newest first",
)
async def my_orders(
    customer: Customer,
    context: ContextDep,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    page = await screens.orders(context, customer_id=customer, offset=offset, limit=limit)
    return JSONResponse(
        page.model_dump(mode="json", by_alias=True),
        headers=page_headers(page.total, len(page.orders)),
    )


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderView,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
    summary="Buy a new line (eSIM or SIM card), a bundle or airtime",
)
async def buy(
    body: PurchaseCreate,
    customer: Customer,
    context: ContextDep,
    idempotency_key: IdempotencyKey = None,
) -> OrderView:
    context.limits.check_order(customer)
    return await handlers.place_purchase(
        context,
        customer_id=customer,
        purchase=body.to_domain(),
        idempotency_key=_attempt(idempotency_key),
    )


@router.get("/orders/{order_id}", response_model=OrderView, responses=READ_ERRORS)
async def my_order(order_id: PathId, customer: Customer, context: ContextDep) -> OrderView:
    return await screens.order(context, customer_id=customer, order_id=order_id)


@router.get(
    "/orders/{order_id}/progress",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: a `progress` event with the order (as GET "
            "/orders/{id} answers it) now and after every change, until it is done.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **READ_ERRORS,
    },
    summary="Live progress of my order (Server-Sent Events)",
)
async def my_order_progress(
    order_id: PathId, customer: Customer, context: ContextDep
) -> EventSourceResponse:
    first = await screens.order(context, customer_id=customer, order_id=order_id)
    return EventSourceResponse(
        _progress(context, customer, first),
        ping=15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _progress(
    context: Context, customer_id: str, first: OrderView
) -> AsyncIterator[ServerSentEvent]:
    view = first
    sent: str | None = None
    with context.announcements.watch(first.id) as changed:
        while True:
            data = view.model_dump_json(by_alias=True)
            if data != sent:
                yield ServerSentEvent(data=data, event="progress")
                sent = data
            if view.done:
                return
            # Without the listener (reconnecting), the read model is read every two seconds.
            wait = 15.0 if context.announcements.listening else 2.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)
            changed.clear()
            view = await screens.order(context, customer_id=customer_id, order_id=first.id)


@router.get(
    "/offers",
    response_model=OffersRead,
    responses=problem_responses(401, 403, 429),
    summary="What I can buy on this channel now",
)
async def offers(customer: Customer, context: ContextDep) -> OffersRead:
    return await screens.offers(context)


@router.post(
    "/demo/session",
    response_model=DemoSessionRead,
    responses=problem_responses(400, 404, 413, 422, 429, 503),
    summary="DEVELOPMENT ONLY: sign a demo customer in (absent in production)",
)
async def demo_session(body: DemoSessionCreate, context: ContextDep) -> DemoSessionRead:
    settings = context.settings
    if settings.is_production or not settings.demo_login_enabled:
        raise Problem(404, "not-found", "There is no demo sign-in here.")
    try:
        response = await context.upstreams.writes.post(
            settings.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "client_id": "portal-web-demo",
                "subject": body.customer_id,
                "scope": settings.customer_scope,
            },
        )
    except httpx.HTTPError:
        raise Problem(
            503, "service-unavailable", "The sign-in service is unavailable; try again shortly."
        ) from None
    if response.status_code != 200:
        raise Problem(503, "service-unavailable", "The sign-in service refused; try again.")
    token: dict[str, Any] = response.json()
    return DemoSessionRead(
        access_token=str(token["access_token"]), expires_in=int(token.get("expires_in", 3600))
    )
