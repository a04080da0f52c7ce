"""Routes of the bank's payment API: ``/payments/v1``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from mvno.simulators.dependencies import IdempotentDep, inject_faults, simulator_of
from mvno.simulators.payments.bank import Bank
from mvno.simulators.payments.schemas import (
    CaptureCreate,
    PaymentCreate,
    PaymentRead,
    RefundCreate,
)
from mvno.simulators.schemas import Health

router = APIRouter(
    prefix="/payments/v1", tags=["bank payments"], dependencies=[Depends(inject_faults)]
)

DECLINES: dict[int | str, dict[str, Any]] = {
    402: {"description": "Declined: insufficient-funds or account-blocked (problem+json)"}
}


def bank_of(request: Request) -> Bank:
    """Routes read the state through the request, not a dependency: each dependency FastAPI
    resolves costs CPU on every call."""
    return simulator_of(request).state.bank


@router.get("/health", summary="The bank answers (for canaries)")
async def check_health() -> Health:
    return Health(status="ok")


@router.post(
    "/payments",
    status_code=201,
    response_model=PaymentRead,
    responses=DECLINES,
    summary="Authorise a payment: hold funds on the customer's account",
)
async def authorise_payment(
    body: PaymentCreate, request: Request, idempotent: IdempotentDep
) -> object:
    bank = bank_of(request)
    return await idempotent.run(
        body,
        lambda: PaymentRead.model_validate(
            bank.authorise(
                account_number=body.account_number,
                amount_cents=body.amount_cents,
                currency=body.currency,
                reference=body.reference,
            )
        ),
    )


@router.get("/payments/{payment_id}", summary="A payment")
async def get_payment(payment_id: str, request: Request) -> PaymentRead:
    bank = bank_of(request)
    return PaymentRead.model_validate(bank.payment(payment_id))


@router.post(
    "/payments/{payment_id}/capture",
    response_model=PaymentRead,
    responses=DECLINES,
    summary="Capture an authorised payment, in full or in part",
)
async def capture_payment(
    payment_id: str,
    request: Request,
    idempotent: IdempotentDep,
    body: Annotated[CaptureCreate | None, Body()] = None,
) -> object:
    bank = bank_of(request)
    amount = body.amount_cents if body else None
    return await idempotent.run(
        body,
        lambda: PaymentRead.model_validate(bank.capture(payment_id, amount)),
        status_code=200,
    )


@router.post(
    "/payments/{payment_id}/void",
    response_model=PaymentRead,
    summary="Void an authorisation that was not captured; the held funds are released",
)
async def void_payment(payment_id: str, request: Request, idempotent: IdempotentDep) -> object:
    bank = bank_of(request)
    return await idempotent.run(
        None, lambda: PaymentRead.model_validate(bank.void(payment_id)), status_code=200
    )


@router.post(
    "/payments/{payment_id}/refunds",
    status_code=201,
    response_model=PaymentRead,
    summary="Refund a captured payment, in full or in part",
)
async def refund_payment(
    payment_id: str,
    request: Request,
    idempotent: IdempotentDep,
    body: Annotated[RefundCreate | None, Body()] = None,
) -> object:
    bank = bank_of(request)
    amount = body.amount_cents if body else None
    return await idempotent.run(
        body, lambda: PaymentRead.model_validate(bank.refund(payment_id, amount))
    )
