"""HTTP routes of the hub (TMF622 ``/hub``): parse, hand over to a handler, map the result.

Channels call them with client-credential tokens carrying ``orders:write``. A client sees and
deletes only its own hubs: another client's hub answers 404, as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from mvno.common.auth.dependencies import require_scopes
from mvno.common.auth.tokens import Principal
from mvno.common.problems import Problem, problem_responses
from mvno.common.service import Infrastructure, get_infrastructure
from mvno.common.tmf import PAGE_HEADERS, page_headers
from mvno.orders.handlers import OrdersContext
from mvno.orders.hub import handlers
from mvno.orders.hub.domain import PREFIX, HubError, HubNotFound
from mvno.orders.hub.schemas import (
    EventSubscription,
    EventSubscriptionCreated,
    EventSubscriptionInput,
    WebhookDeliveryRead,
)
from mvno.orders.unit_of_work import OrdersUnitOfWork

WRITE_SCOPE = "orders:write"

router = APIRouter(prefix=PREFIX, tags=["events subscription"])

Client = Annotated[Principal, Depends(require_scopes(WRITE_SCOPE))]
InfrastructureDep = Annotated[Infrastructure, Depends(get_infrastructure)]


async def get_units_of_work(request: Request) -> Callable[[], OrdersUnitOfWork]:
    context: OrdersContext = request.app.state.orders
    return context.unit_of_work


UnitsOfWork = Annotated[Callable[[], OrdersUnitOfWork], Depends(get_units_of_work)]

_NO_STORE = {"Cache-Control": "no-store"}


@contextmanager
def _as_problems() -> Iterator[None]:
    try:
        yield
    except HubNotFound as error:
        raise Problem(404, "not-found", error.message) from None
    except HubError as error:
        field = error.field or ""
        raise Problem(
            422,
            "validation-error",
            error.message,
            errors=[
                {
                    "pointer": f"#/body/{field}",
                    "field": field,
                    "in": "body",
                    "detail": error.message,
                }
            ],
        ) from None


@router.post(
    "/hub",
    status_code=201,
    response_model=EventSubscriptionCreated,
    responses={
        201: {"headers": {"Location": {"description": "The hub", "schema": {"type": "string"}}}},
        **problem_responses(400, 401, 403, 413, 422, 503),
    },
    summary="Register a listener: order notifications are POSTed to its callback, signed",
)
async def register_listener(
    body: EventSubscriptionInput,
    client: Client,
    infrastructure: InfrastructureDep,
    units: UnitsOfWork,
) -> JSONResponse:
    with _as_problems():
        hub = await handlers.register_hub(
            units,
            owner=handlers.owner_of(client),
            callback=body.callback,
            query=body.query,
            production=infrastructure.settings.is_production,
        )
    # The secret is in this answer only: no cache may keep it.
    return JSONResponse(
        EventSubscriptionCreated.of(hub).dump(),
        status_code=201,
        headers={"Location": f"{PREFIX}/hub/{hub.id}", **_NO_STORE},
    )


@router.get(
    "/hub/{hub_id}",
    response_model=EventSubscription,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Get a listener you registered (without its secret)",
)
async def get_listener(hub_id: str, client: Client, units: UnitsOfWork) -> JSONResponse:
    with _as_problems():
        hub = await handlers.get_hub(units, hub_id=hub_id, owner=handlers.owner_of(client))
    return JSONResponse(EventSubscription.of(hub).dump(), headers=_NO_STORE)


@router.delete(
    "/hub/{hub_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Unregister a listener; notifications not yet delivered to it are dropped",
)
async def unregister_listener(hub_id: str, client: Client, units: UnitsOfWork) -> Response:
    with _as_problems():
        await handlers.unregister_hub(units, hub_id=hub_id, owner=handlers.owner_of(client))
    return Response(status_code=204)


@router.get(
    "/hub/{hub_id}/delivery",
    response_model=list[WebhookDeliveryRead],
    responses={200: {"headers": PAGE_HEADERS}, **problem_responses(401, 403, 404, 422, 503)},
    summary="A listener's delivery log, newest first: each notification and its attempts",
)
async def list_deliveries(
    hub_id: str,
    client: Client,
    infrastructure: InfrastructureDep,
    units: UnitsOfWork,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=200, description="Items to return at most.")] = 50,
) -> JSONResponse:
    with _as_problems():
        total, deliveries = await handlers.delivery_log(
            units,
            hub_id=hub_id,
            owner=handlers.owner_of(client),
            offset=offset,
            limit=limit,
        )
    page: list[dict[str, Any]] = [WebhookDeliveryRead.of(d).dump() for d in deliveries]
    return JSONResponse(
        page,
        headers={**page_headers(total, len(page)), **_NO_STORE},
    )
