"""HTTP routes of the billing-sync service: parse, hand over to a query, map the result.

Both reads need the ``billing:read`` scope (staff tokens and portal-api's client token carry it;
portal-api checks that the customer owns the subscription before it asks).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from mvno.billing_sync import reads
from mvno.billing_sync.schemas import BALANCE_PREFIX, USAGE_PREFIX, BucketRead, UsageRead
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.auth.dependencies import require_scopes
from mvno.common.auth.tokens import Principal
from mvno.common.problems import Problem, problem_responses
from mvno.common.service import Infrastructure, get_infrastructure
from mvno.common.tmf import ID_PATTERN, PAGE_HEADERS, page_headers

READ_SCOPE = "billing:read"

balance_router = APIRouter(prefix=BALANCE_PREFIX, tags=["balances (TMF654)"])
usage_router = APIRouter(prefix=USAGE_PREFIX, tags=["usage (TMF635)"])


def get_units_of_work(
    infrastructure: Annotated[Infrastructure, Depends(get_infrastructure)],
) -> Callable[[], BillingUnitOfWork]:
    """The app's unit-of-work factory, offering billing-sync's repositories."""
    return infrastructure.units_of_work(BillingUnitOfWork)


UnitsOfWork = Annotated[Callable[[], BillingUnitOfWork], Depends(get_units_of_work)]
Reader = Annotated[Principal, Depends(require_scopes(READ_SCOPE))]
ProductId = Annotated[
    str,
    Query(
        alias="product.id",
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="The subscription.",
    ),
]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]
Limit = Annotated[int, Query(ge=1, le=200, description="Items to return at most.")]
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": PAGE_HEADERS},
    **problem_responses(400, 401, 403, 422),
}


def _page(total: int, items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(items, headers=page_headers(total, len(items)))


@balance_router.get(
    "/bucket",
    response_model=list[BucketRead],
    responses=LIST_RESPONSES,
    summary="A subscription's allowance buckets and airtime balance",
)
async def list_buckets(
    unit_of_work: UnitsOfWork,
    _reader: Reader,
    product_id: ProductId,
    offset: Offset = 0,
    limit: Limit = 50,
) -> JSONResponse:
    total, items = await reads.buckets_of(
        unit_of_work, subscription_id=product_id, offset=offset, limit=limit
    )
    return _page(total, items)


@usage_router.get(
    "/usage",
    response_model=list[UsageRead],
    responses=LIST_RESPONSES,
    summary="A subscription's usage per UTC day, newest first",
)
async def list_usage(
    unit_of_work: UnitsOfWork,
    _reader: Reader,
    product_id: ProductId,
    since: Annotated[date | None, Query(alias="date.gte", description="First day (UTC)")] = None,
    until: Annotated[date | None, Query(alias="date.lte", description="Last day (UTC)")] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> JSONResponse:
    if since and until and since > until:
        raise Problem(400, "bad-request", "date.gte is after date.lte")
    total, items = await reads.usage_of(
        unit_of_work,
        subscription_id=product_id,
        since=since,
        until=until,
        offset=offset,
        limit=limit,
    )
    return _page(total, items)
