"""Routes of the billing platform: ``/billing/v1``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from mvno.simulators.billing.platform import AccountStatus, BillingPlatform
from mvno.simulators.billing.schemas import (
    AccountCreate,
    AccountPage,
    AccountRead,
    InvoicePage,
    InvoiceRead,
    SubscriptionCreate,
    SubscriptionRead,
    TariffChange,
)
from mvno.simulators.dependencies import IdempotentDep, inject_faults, simulator_of
from mvno.simulators.schemas import Health

router = APIRouter(
    prefix="/billing/v1", tags=["billing platform"], dependencies=[Depends(inject_faults)]
)


def billing_of(request: Request) -> BillingPlatform:
    """Routes read the state through the request, not a dependency: each dependency FastAPI
    resolves costs CPU on every call."""
    return simulator_of(request).state.billing


@router.get("/health", summary="The billing platform answers (for canaries)")
async def check_health() -> Health:
    return Health(status="ok")


@router.post(
    "/accounts", status_code=201, response_model=AccountRead, summary="Open a billing account"
)
async def create_account(
    body: AccountCreate, request: Request, idempotent: IdempotentDep
) -> object:
    billing = billing_of(request)
    return await idempotent.run(
        body,
        lambda: AccountRead.of(
            billing.create_account(
                customer_ref=body.customer_ref, name=body.name, currency=body.currency
            ),
            billing.subscriptions,
        ),
    )


@router.get(
    "/accounts",
    summary="Accounts page by page, with their subscriptions (for reconciliation)",
)
async def list_accounts(
    request: Request,
    status: AccountStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccountPage:
    billing = billing_of(request)
    accounts = billing.accounts_page(after=cursor, limit=limit, status=status)
    return AccountPage(
        items=[AccountRead.of(account, billing.subscriptions) for account in accounts],
        next_cursor=accounts[-1].id if len(accounts) == limit else None,
    )


@router.get("/accounts/{account_id}", summary="A billing account with its subscriptions")
async def get_account(account_id: str, request: Request) -> AccountRead:
    billing = billing_of(request)
    return AccountRead.of(billing.account(account_id), billing.subscriptions)


@router.post(
    "/accounts/{account_id}/close",
    response_model=AccountRead,
    summary="Close an account; its subscriptions end",
)
async def close_account(account_id: str, request: Request, idempotent: IdempotentDep) -> object:
    billing = billing_of(request)
    return await idempotent.run(
        None,
        lambda: AccountRead.of(billing.close_account(account_id), billing.subscriptions),
        status_code=200,
    )


@router.post(
    "/accounts/{account_id}/subscriptions",
    status_code=201,
    response_model=SubscriptionRead,
    summary="Bill a subscription on an account",
)
async def create_subscription(
    account_id: str, body: SubscriptionCreate, request: Request, idempotent: IdempotentDep
) -> object:
    billing = billing_of(request)
    return await idempotent.run(
        body,
        lambda: SubscriptionRead.model_validate(
            billing.add_subscription(
                account_id,
                msisdn=body.msisdn,
                tariff_code=body.tariff_code,
                monthly_charge_cents=body.monthly_charge_cents,
                external_ref=body.external_ref,
            )
        ),
    )


@router.get("/subscriptions/{subscription_id}", summary="A billed subscription")
async def get_subscription(subscription_id: str, request: Request) -> SubscriptionRead:
    billing = billing_of(request)
    return SubscriptionRead.model_validate(billing.subscription(subscription_id))


@router.post(
    "/subscriptions/{subscription_id}/tariff",
    response_model=SubscriptionRead,
    summary="Change a subscription's tariff from now on",
)
async def change_tariff(
    subscription_id: str, body: TariffChange, request: Request, idempotent: IdempotentDep
) -> object:
    billing = billing_of(request)
    return await idempotent.run(
        body,
        lambda: SubscriptionRead.model_validate(
            billing.change_tariff(
                subscription_id,
                tariff_code=body.tariff_code,
                monthly_charge_cents=body.monthly_charge_cents,
            )
        ),
        status_code=200,
    )


@router.post(
    "/subscriptions/{subscription_id}/end",
    response_model=SubscriptionRead,
    summary="Stop billing a subscription (its line was terminated)",
)
async def end_subscription(
    subscription_id: str, request: Request, idempotent: IdempotentDep
) -> object:
    billing = billing_of(request)
    return await idempotent.run(
        None,
        lambda: SubscriptionRead.model_validate(billing.end_subscription(subscription_id)),
        status_code=200,
    )


@router.get("/accounts/{account_id}/invoices", summary="An account's invoices")
async def list_invoices(account_id: str, request: Request) -> InvoicePage:
    billing = billing_of(request)
    return InvoicePage(
        items=[InvoiceRead.model_validate(i) for i in billing.invoices_of(account_id)]
    )


@router.get("/invoices/{invoice_id}", summary="An invoice")
async def get_invoice(invoice_id: str, request: Request) -> InvoiceRead:
    billing = billing_of(request)
    return InvoiceRead.model_validate(billing.invoice(invoice_id))
