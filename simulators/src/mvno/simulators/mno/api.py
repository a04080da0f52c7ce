"""Routes of the host network operator (MNO/MVNE): ``/mno/v1``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from mvno.simulators.dependencies import IdempotentDep, inject_faults, simulator_of
from mvno.simulators.mno import rica
from mvno.simulators.mno.numbers import NumberStatus
from mvno.simulators.mno.operator import NetworkOperator
from mvno.simulators.mno.schemas import (
    NumberPage,
    NumberRead,
    PortInCreate,
    PortInRead,
    ReservationCreate,
    ReservationRead,
    RicaRegistrationCreate,
    RicaRegistrationRead,
    SimPage,
    SimRead,
    SimSwapCreate,
    SubscriptionCreate,
    SubscriptionRead,
    SuspensionCreate,
    UsagePage,
    UsageRecordRead,
)
from mvno.simulators.mno.sims import SimKind, SimStatus
from mvno.simulators.mno.subscriptions import SubscriptionStatus
from mvno.simulators.schemas import Health

router = APIRouter(
    prefix="/mno/v1", tags=["network operator"], dependencies=[Depends(inject_faults)]
)


def operator_of(request: Request) -> NetworkOperator:
    """Routes read the state through the request, not a dependency: each dependency FastAPI
    resolves costs CPU on every call."""
    return simulator_of(request).state.operator


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/health", summary="The network operator answers (for canaries)")
async def check_health() -> Health:
    return Health(status="ok")


@router.get("/msisdns", summary="Numbers in the pool")
async def list_numbers(
    request: Request, status: NumberStatus | None = None, limit: Limit = 50
) -> NumberPage:
    operator = operator_of(request)
    operator.numbers.expire(operator.clock.now())
    return NumberPage(
        items=[NumberRead(msisdn=m, status=s) for m, s in operator.numbers.numbers(status, limit)]
    )


@router.post(
    "/msisdn-reservations",
    status_code=201,
    response_model=ReservationRead,
    summary="Reserve a number (a chosen one or any free one) for a while",
)
async def reserve_number(
    request: Request,
    idempotent: IdempotentDep,
    body: Annotated[ReservationCreate | None, Body()] = None,
) -> object:
    operator = operator_of(request)
    wanted = body or ReservationCreate()
    hold = wanted.hold_seconds or idempotent.simulator.settings.reservation_hold_seconds
    return await idempotent.run(
        body,
        lambda: ReservationRead.model_validate(operator.reserve_number(wanted.msisdn, hold)),
    )


@router.get("/msisdn-reservations/{reservation_id}", summary="A reservation")
async def get_reservation(reservation_id: str, request: Request) -> ReservationRead:
    operator = operator_of(request)
    return ReservationRead.model_validate(operator.reservation(reservation_id))


@router.post(
    "/msisdn-reservations/{reservation_id}/release",
    response_model=ReservationRead,
    summary="Give a reserved number back to the pool",
)
async def release_reservation(
    reservation_id: str, request: Request, idempotent: IdempotentDep
) -> object:
    operator = operator_of(request)
    return await idempotent.run(
        None,
        lambda: ReservationRead.model_validate(operator.release_reservation(reservation_id)),
        status_code=200,
    )


@router.post(
    "/port-ins",
    status_code=201,
    response_model=PortInRead,
    summary="Ask to bring a number from another network; it completes (or is refused) later",
)
async def request_port_in(
    body: PortInCreate, request: Request, idempotent: IdempotentDep
) -> object:
    operator = operator_of(request)
    return await idempotent.run(
        body, lambda: PortInRead.model_validate(operator.request_port_in(body.msisdn))
    )


@router.get("/port-ins/{port_in_id}", summary="A port-in as it stands now")
async def get_port_in(port_in_id: str, request: Request) -> PortInRead:
    operator = operator_of(request)
    return PortInRead.model_validate(operator.port_in(port_in_id))


@router.post(
    "/port-ins/{port_in_id}/cancel",
    response_model=PortInRead,
    summary="Withdraw a port-in; a completed one gives up its reserved number",
)
async def cancel_port_in(port_in_id: str, request: Request, idempotent: IdempotentDep) -> object:
    operator = operator_of(request)
    return await idempotent.run(
        None,
        lambda: PortInRead.model_validate(operator.cancel_port_in(port_in_id)),
        status_code=200,
    )


@router.get("/sims", summary="SIM inventory: physical SIMs in stock and eSIM profiles")
async def list_sims(
    request: Request,
    kind: SimKind | None = None,
    status: SimStatus | None = None,
    limit: Limit = 50,
) -> SimPage:
    operator = operator_of(request)
    sims = operator.sims.find(kind=kind, status=status, limit=limit)
    return SimPage(items=[SimRead.model_validate(sim) for sim in sims])


@router.get("/sims/{iccid}", summary="A SIM by ICCID")
async def get_sim(iccid: str, request: Request) -> SimRead:
    operator = operator_of(request)
    return SimRead.model_validate(operator.sims.sim(iccid))


@router.post(
    "/esim-profiles",
    status_code=201,
    response_model=SimRead,
    summary="Prepare an eSIM profile; its activation code goes to the customer's device",
)
async def allocate_esim(request: Request, idempotent: IdempotentDep) -> object:
    operator = operator_of(request)
    return await idempotent.run(None, lambda: SimRead.model_validate(operator.allocate_esim()))


@router.post(
    "/rica-registrations",
    status_code=201,
    response_model=RicaRegistrationRead,
    summary="Register the user of a number under RICA; refused with a reason when incomplete",
)
async def register_rica(
    body: RicaRegistrationCreate, request: Request, idempotent: IdempotentDep
) -> object:
    operator = operator_of(request)
    address = body.residential_address
    return await idempotent.run(
        body,
        lambda: RicaRegistrationRead.of(
            operator.register_rica(
                msisdn=body.msisdn,
                id_number=body.id_number,
                passport_number=body.passport_number,
                passport_country=body.passport_country,
                full_name=body.full_name,
                address=rica.Address(
                    line1=address.line1,
                    line2=address.line2,
                    suburb=address.suburb,
                    city=address.city,
                    postal_code=address.postal_code,
                ),
            )
        ),
    )


@router.get("/rica-registrations/{registration_id}", summary="A RICA registration")
async def get_rica_registration(registration_id: str, request: Request) -> RicaRegistrationRead:
    operator = operator_of(request)
    return RicaRegistrationRead.of(operator.registration(registration_id))


def _activation_status(subscription: SubscriptionRead) -> int:
    return 202 if subscription.status is SubscriptionStatus.PENDING else 201


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionRead,
    responses={202: {"model": SubscriptionRead, "description": "Pending; a callback follows"}},
    summary="Activate a subscription: a reserved, RICA-registered number on a SIM, with a tariff",
)
async def activate_subscription(
    body: SubscriptionCreate, request: Request, idempotent: IdempotentDep
) -> object:
    operator = operator_of(request)

    def activate() -> SubscriptionRead:
        subscription = operator.activate(
            msisdn=body.msisdn,
            iccid=body.iccid,
            tariff_code=body.tariff_code,
            callback_url=str(body.callback_url) if body.callback_url else None,
        )
        if subscription.status is SubscriptionStatus.PENDING:
            idempotent.simulator.schedule_activation(subscription.id)
        return SubscriptionRead.model_validate(subscription)

    return await idempotent.run(body, activate, status_code=_activation_status)


@router.get("/subscriptions/{subscription_id}", summary="A subscription")
async def get_subscription(subscription_id: str, request: Request) -> SubscriptionRead:
    operator = operator_of(request)
    return SubscriptionRead.model_validate(operator.subscription(subscription_id))


@router.post(
    "/subscriptions/{subscription_id}/suspend",
    response_model=SubscriptionRead,
    summary="Bar an active subscription (lost phone, arrears)",
)
async def suspend_subscription(
    subscription_id: str,
    request: Request,
    idempotent: IdempotentDep,
    body: Annotated[SuspensionCreate | None, Body()] = None,
) -> object:
    operator = operator_of(request)
    reason = body.reason if body else None
    return await idempotent.run(
        body,
        lambda: SubscriptionRead.model_validate(operator.suspend(subscription_id, reason)),
        status_code=200,
    )


@router.post(
    "/subscriptions/{subscription_id}/resume",
    response_model=SubscriptionRead,
    summary="Lift a suspension",
)
async def resume_subscription(
    subscription_id: str, request: Request, idempotent: IdempotentDep
) -> object:
    operator = operator_of(request)
    return await idempotent.run(
        None,
        lambda: SubscriptionRead.model_validate(operator.resume(subscription_id)),
        status_code=200,
    )


@router.post(
    "/subscriptions/{subscription_id}/terminate",
    response_model=SubscriptionRead,
    summary="End a subscription; its number goes back to the pool and its SIM is retired",
)
async def terminate_subscription(
    subscription_id: str, request: Request, idempotent: IdempotentDep
) -> object:
    operator = operator_of(request)
    return await idempotent.run(
        None,
        lambda: SubscriptionRead.model_validate(operator.terminate(subscription_id)),
        status_code=200,
    )


@router.post(
    "/subscriptions/{subscription_id}/sim-swap",
    response_model=SubscriptionRead,
    summary="Move a subscription to another SIM; the old one is retired",
)
async def swap_sim(
    subscription_id: str, body: SimSwapCreate, request: Request, idempotent: IdempotentDep
) -> object:
    operator = operator_of(request)
    return await idempotent.run(
        body,
        lambda: SubscriptionRead.model_validate(operator.swap_sim(subscription_id, body.iccid)),
        status_code=200,
    )


@router.get(
    "/usage-records",
    summary="Usage export: data, voice and SMS records after a cursor, oldest first",
)
async def export_usage(
    request: Request,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,12}$", description="nextCursor of the last page")
    ] = None,
    subscription_id: Annotated[str | None, Query(alias="subscriptionId", max_length=64)] = None,
    limit: Limit = 100,
) -> UsagePage:
    operator = operator_of(request)
    after = int(cursor or 0)
    records = operator.usage_records(after=after, limit=limit, subscription_id=subscription_id)
    return UsagePage(
        records=[
            UsageRecordRead.model_validate(record, from_attributes=True) for record in records
        ],
        next_cursor=str(records[-1].sequence if records else after),
    )
