"""HTTP routes of the catalog service: parse, hand over to a handler or a query, map the result.

Reads are open to every caller inside the platform's network (the catalogue is what the bank
sells); writes and the audit trail need the ``catalog:write`` scope that staff tokens carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from mvno.catalog import handlers
from mvno.catalog.domain.commands import Actor
from mvno.catalog.domain.model import Channel, LifecycleStatus
from mvno.catalog.queries import CatalogQueries
from mvno.catalog.reads import Reader
from mvno.catalog.repository import OfferingFilter
from mvno.catalog.schemas import (
    PREFIX,
    AuditRecordRead,
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    FeedDocument,
    FeedImportResult,
    OfferingCreate,
    OfferingRead,
    OfferingUpdate,
    PriceCreate,
    PriceRead,
    SpecificationCreate,
    SpecificationRead,
    SpecificationUpdate,
)
from mvno.catalog.unit_of_work import CatalogUnitOfWork
from mvno.common import tmf
from mvno.common.auth.dependencies import require_scopes
from mvno.common.auth.tokens import Principal
from mvno.common.problems import Problem, problem_responses
from mvno.common.service import Infrastructure, get_infrastructure
from mvno.common.tmf import ID_PATTERN, PathId, dump, members_of, parse_fields

router = APIRouter(prefix=PREFIX)

WRITE_SCOPE = "catalog:write"


@dataclass(frozen=True)
class Catalog:
    """What the routes use, built once in ``create_app``."""

    queries: CatalogQueries
    reader: Reader


async def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
InfrastructureDep = Annotated[Infrastructure, Depends(get_infrastructure)]
Staff = Annotated[Principal, Depends(require_scopes(WRITE_SCOPE))]
Resource = CategoryRead | SpecificationRead | OfferingRead | PriceRead
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]
Limit = Annotated[int, Query(ge=1, le=200, description="Items to return at most.")]
Fields = Annotated[
    str | None,
    Query(description="Comma-separated members to return (id, href and @type always are)."),
]

PAGE_HEADERS = {
    **tmf.PAGE_HEADERS,
    "ETag": {"description": "Send it back in If-None-Match", "schema": {"type": "string"}},
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}
LIST_RESPONSES = {200: {"headers": PAGE_HEADERS}, **NOT_MODIFIED, **problem_responses(400, 422)}
GET_RESPONSES = {
    200: {"headers": {"ETag": PAGE_HEADERS["ETag"]}},
    **NOT_MODIFIED,
    **problem_responses(400, 404, 422),
}
CREATE_RESPONSES = problem_responses(400, 401, 403, 409, 413, 422, 503)
UPDATE_RESPONSES = problem_responses(400, 401, 403, 404, 409, 413, 422, 503)


@dataclass(frozen=True)
class Write:
    """What every write route needs: its units of work, who asks, and the answer it gives."""

    unit_of_work: Callable[[], CatalogUnitOfWork]
    actor: Actor
    catalog: Catalog

    def created(self, resource: Resource) -> JSONResponse:
        """201 with the new resource and its Location."""
        return self._answer(dump(resource), status=201, location=resource.href)

    def done(self, result: Resource | FeedImportResult) -> JSONResponse:
        """200 with the resource (or the feed's outcome) as the write left it."""
        return self._answer(dump(result))

    def _answer(
        self, body: dict[str, Any], *, status: int = 200, location: str | None = None
    ) -> JSONResponse:
        # This replica sees its own write at once; the others when the commit's NOTIFY arrives.
        self.catalog.reader.cache.clear()
        headers = {"Location": location} if location else {}
        return JSONResponse(body, status_code=status, headers=headers)


async def get_write(staff: Staff, infrastructure: InfrastructureDep, catalog: CatalogDep) -> Write:
    """The staff member's write, in the catalog's units of work."""
    return Write(
        unit_of_work=infrastructure.units_of_work(CatalogUnitOfWork),
        actor=Actor(staff.subject, staff.client_id, correlation_id.get()),
        catalog=catalog,
    )


Writing = Annotated[Write, Depends(get_write)]


# --- product offerings ------------------------------------------------------------------------


@router.get(
    "/productOffering",
    response_model=list[OfferingRead],
    responses=LIST_RESPONSES,
    summary="List product offerings",
)
async def list_offerings(
    request: Request,
    catalog: CatalogDep,
    lifecycle_status: Annotated[LifecycleStatus | None, Query(alias="lifecycleStatus")] = None,
    category_id: Annotated[
        str | None, Query(alias="category.id", max_length=64, pattern=ID_PATTERN)
    ] = None,
    channel: Annotated[Channel | None, Query(alias="channel.id")] = None,
    is_sellable: Annotated[
        bool | None,
        Query(alias="isSellable", description="true: only Launched offerings inside validFor"),
    ] = None,
    offset: Offset = 0,
    limit: Limit = 50,
    fields: Fields = None,
) -> Response:
    selected = parse_fields(fields, members_of(OfferingRead))
    where = OfferingFilter(
        lifecycle_status=lifecycle_status,
        category_id=category_id,
        channel=channel,
        sellable=is_sellable,
        at=datetime.now(UTC),
    )
    return await catalog.reader.respond(
        request,
        lambda: catalog.queries.offerings(where=where, offset=offset, limit=limit, fields=selected),
    )


@router.get(
    "/productOffering/{offering_id}",
    response_model=OfferingRead,
    responses=GET_RESPONSES,
    summary="Get a product offering",
)
async def get_offering(
    request: Request, catalog: CatalogDep, offering_id: PathId, fields: Fields = None
) -> Response:
    selected = parse_fields(fields, members_of(OfferingRead))
    return await catalog.reader.respond(
        request, lambda: catalog.queries.offering(offering_id=offering_id, fields=selected)
    )


@router.post(
    "/productOffering",
    responses=CREATE_RESPONSES,
    status_code=201,
    response_model=OfferingRead,
    summary="Create an offering",
)
async def create_offering(body: OfferingCreate, write: Writing) -> JSONResponse:
    offering = await handlers.create_offering(write.unit_of_work, write.actor, body.to_terms())
    return write.created(OfferingRead.of(offering, offering.last_update))


@router.patch(
    "/productOffering/{offering_id}",
    responses=UPDATE_RESPONSES,
    response_model=OfferingRead,
    summary="Update an offering, or move it one step in its lifecycle",
)
async def update_offering(
    offering_id: PathId,
    body: Annotated[OfferingUpdate, Body(media_type="application/merge-patch+json")],
    write: Writing,
) -> JSONResponse:
    offering = await handlers.update_offering(
        write.unit_of_work, write.actor, offering_id, body.changes(), body.lifecycle_status
    )
    return write.done(OfferingRead.of(offering, offering.last_update))


# --- prices -----------------------------------------------------------------------------------


@router.get(
    "/productOfferingPrice",
    response_model=list[PriceRead],
    responses=LIST_RESPONSES,
    summary="List prices, e.g. those valid at the instant an order was placed",
)
async def list_prices(
    request: Request,
    catalog: CatalogDep,
    offering_id: Annotated[
        str | None, Query(alias="productOffering.id", max_length=64, pattern=ID_PATTERN)
    ] = None,
    valid_at: Annotated[
        datetime | None,
        Query(alias="validAt", description="Only prices valid at this instant (with a zone)"),
    ] = None,
    offset: Offset = 0,
    limit: Limit = 50,
    fields: Fields = None,
) -> Response:
    selected = parse_fields(fields, members_of(PriceRead))
    if valid_at is not None and valid_at.tzinfo is None:
        raise Problem(400, "bad-request", "validAt needs a time zone, e.g. 2026-11-28T10:00:00Z")
    return await catalog.reader.respond(
        request,
        lambda: catalog.queries.prices(
            offering_id=offering_id, valid_at=valid_at, offset=offset, limit=limit, fields=selected
        ),
    )


@router.get(
    "/productOfferingPrice/{price_id}",
    response_model=PriceRead,
    responses=GET_RESPONSES,
    summary="Get one price version",
)
async def get_price(
    request: Request, catalog: CatalogDep, price_id: PathId, fields: Fields = None
) -> Response:
    selected = parse_fields(fields, members_of(PriceRead))
    return await catalog.reader.respond(
        request, lambda: catalog.queries.price(price_id=price_id, fields=selected)
    )


@router.post(
    "/productOfferingPrice",
    responses=CREATE_RESPONSES,
    status_code=201,
    response_model=PriceRead,
    summary="Open a new price version; the current one in its slot closes when it starts",
)
async def create_price(body: PriceCreate, write: Writing) -> JSONResponse:
    price = await handlers.add_price(
        write.unit_of_work, write.actor, body.product_offering.id, body.to_terms()
    )
    return write.created(PriceRead.of(price))


# --- categories -------------------------------------------------------------------------------


@router.get(
    "/category",
    response_model=list[CategoryRead],
    responses=LIST_RESPONSES,
    summary="List categories",
)
async def list_categories(
    request: Request,
    catalog: CatalogDep,
    offset: Offset = 0,
    limit: Limit = 50,
    fields: Fields = None,
) -> Response:
    selected = parse_fields(fields, members_of(CategoryRead))
    return await catalog.reader.respond(
        request, lambda: catalog.queries.categories(offset=offset, limit=limit, fields=selected)
    )


@router.get(
    "/category/{category_id}",
    response_model=CategoryRead,
    responses=GET_RESPONSES,
    summary="Get a category",
)
async def get_category(
    request: Request, catalog: CatalogDep, category_id: PathId, fields: Fields = None
) -> Response:
    selected = parse_fields(fields, members_of(CategoryRead))
    return await catalog.reader.respond(
        request, lambda: catalog.queries.category(category_id=category_id, fields=selected)
    )


@router.post(
    "/category",
    responses=CREATE_RESPONSES,
    status_code=201,
    response_model=CategoryRead,
    summary="Create a category",
)
async def create_category(body: CategoryCreate, write: Writing) -> JSONResponse:
    category = await handlers.create_category(write.unit_of_work, write.actor, body.to_terms())
    return write.created(CategoryRead.of(category))


@router.patch(
    "/category/{category_id}",
    responses=UPDATE_RESPONSES,
    response_model=CategoryRead,
    summary="Update a category",
)
async def update_category(
    category_id: PathId,
    body: Annotated[CategoryUpdate, Body(media_type="application/merge-patch+json")],
    write: Writing,
) -> JSONResponse:
    category = await handlers.update_category(
        write.unit_of_work, write.actor, category_id, body.changes()
    )
    return write.done(CategoryRead.of(category))


# --- product specifications -------------------------------------------------------------------


@router.get(
    "/productSpecification",
    response_model=list[SpecificationRead],
    responses=LIST_RESPONSES,
    summary="List product specifications",
)
async def list_specifications(
    request: Request,
    catalog: CatalogDep,
    offset: Offset = 0,
    limit: Limit = 50,
    fields: Fields = None,
) -> Response:
    selected = parse_fields(fields, members_of(SpecificationRead))
    return await catalog.reader.respond(
        request,
        lambda: catalog.queries.specifications(offset=offset, limit=limit, fields=selected),
    )


@router.get(
    "/productSpecification/{specification_id}",
    response_model=SpecificationRead,
    responses=GET_RESPONSES,
    summary="Get a product specification",
)
async def get_specification(
    request: Request, catalog: CatalogDep, specification_id: PathId, fields: Fields = None
) -> Response:
    selected = parse_fields(fields, members_of(SpecificationRead))
    return await catalog.reader.respond(
        request,
        lambda: catalog.queries.specification(specification_id=specification_id, fields=selected),
    )


@router.post(
    "/productSpecification",
    responses=CREATE_RESPONSES,
    status_code=201,
    response_model=SpecificationRead,
    summary="Create a product specification",
)
async def create_specification(body: SpecificationCreate, write: Writing) -> JSONResponse:
    specification = await handlers.create_specification(
        write.unit_of_work, write.actor, body.to_terms()
    )
    return write.created(SpecificationRead.of(specification))


@router.patch(
    "/productSpecification/{specification_id}",
    responses=UPDATE_RESPONSES,
    response_model=SpecificationRead,
    summary="Update a product specification no launched offering relies on",
)
async def update_specification(
    specification_id: PathId,
    body: Annotated[SpecificationUpdate, Body(media_type="application/merge-patch+json")],
    write: Writing,
) -> JSONResponse:
    specification = await handlers.update_specification(
        write.unit_of_work, write.actor, specification_id, body.changes()
    )
    return write.done(SpecificationRead.of(specification))


# --- feeds and audit --------------------------------------------------------------------------


@router.post(
    "/feedImport",
    responses=CREATE_RESPONSES,
    response_model=FeedImportResult,
    summary="Apply a partner's product feed as a whole, or refuse it with every problem listed",
)
async def import_feed(body: FeedDocument, write: Writing) -> JSONResponse:
    outcome = await handlers.import_feed(write.unit_of_work, write.actor, body.to_command())
    return write.done(FeedImportResult(partner=body.partner, **vars(outcome)))


@router.get(
    "/auditRecord",
    response_model=list[AuditRecordRead],
    responses={200: {"headers": PAGE_HEADERS}, **problem_responses(400, 401, 403, 422, 503)},
    summary="Who changed what in the catalogue, newest first (staff only)",
)
async def list_audit_records(
    staff: Staff,
    catalog: CatalogDep,
    entity_type: Annotated[
        str | None, Query(alias="entityType", max_length=32, pattern=ID_PATTERN)
    ] = None,
    entity_id: Annotated[
        str | None, Query(alias="entityId", max_length=64, pattern=ID_PATTERN)
    ] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> JSONResponse:
    total, records = await catalog.queries.audit(
        entity_type=entity_type, entity_id=entity_id, offset=offset, limit=limit
    )
    return JSONResponse(
        [dump(record) for record in records],
        headers={**tmf.page_headers(total, len(records)), "Cache-Control": "no-store"},
    )
