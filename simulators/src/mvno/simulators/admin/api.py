"""Admin endpoints: fault injection, reset, the clock and the partners' test levers.

Never subject to injected faults themselves, so a test can always switch a fault off again.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from mvno.common.problems import Problem
from mvno.simulators.admin.schemas import (
    ActivationSettings,
    ActivationSettingsRead,
    BankAccountRead,
    BankAccountUpdate,
    BillRunCreate,
    CallbackDeliveryRead,
    CallbackPage,
    ClockAdvance,
    ClockRead,
    FaultEntry,
    FaultTableRead,
    PortInSettings,
    PortInSettingsRead,
    ResetCreate,
    ResetRead,
)
from mvno.simulators.billing.schemas import InvoicePage, InvoiceRead
from mvno.simulators.dependencies import SimulatorDep
from mvno.simulators.faults import FaultRule, UnknownOperation
from mvno.simulators.simulator import Simulator

router = APIRouter(prefix="/admin", tags=["admin"])

AccountNumber = Annotated[str, Path(pattern=r"^[0-9]{6,16}$")]


def _fault_table(simulator: Simulator) -> FaultTableRead:
    faults = simulator.faults
    return FaultTableRead(
        rules=[
            FaultEntry(partner=partner, operation=operation, rule=rule)
            for (partner, operation), rule in faults.rules.items()
        ],
        operations={partner: sorted(names) for partner, names in faults.operations.items()},
    )


def _set_fault(
    simulator: Simulator, partner: str, operation: str | None, rule: FaultRule
) -> FaultEntry:
    try:
        simulator.faults.set(partner, operation, rule)
    except UnknownOperation as error:
        raise Problem(404, "unknown-operation", str(error)) from None
    return FaultEntry(partner=partner, operation=operation, rule=rule)


def _clear_fault(simulator: Simulator, partner: str, operation: str | None) -> Response:
    try:
        simulator.faults.clear(partner, operation)
    except UnknownOperation as error:
        raise Problem(404, "unknown-operation", str(error)) from None
    return Response(status_code=204)


@router.get("/faults", summary="The fault rules in force and every operation they can name")
async def list_faults(simulator: SimulatorDep) -> FaultTableRead:
    return _fault_table(simulator)


@router.put("/faults/{partner}", summary="Inject faults into every operation of a partner")
async def set_partner_fault(partner: str, rule: FaultRule, simulator: SimulatorDep) -> FaultEntry:
    return _set_fault(simulator, partner, None, rule)


@router.put(
    "/faults/{partner}/{operation}",
    summary="Inject faults into one operation (replaces the partner's rule for it)",
)
async def set_operation_fault(
    partner: str, operation: str, rule: FaultRule, simulator: SimulatorDep
) -> FaultEntry:
    return _set_fault(simulator, partner, operation, rule)


@router.delete("/faults", status_code=204, summary="Remove every fault rule")
async def clear_faults(simulator: SimulatorDep) -> Response:
    simulator.faults.clear()
    return Response(status_code=204)


@router.delete("/faults/{partner}", status_code=204, summary="Remove a partner's own rule")
async def clear_partner_fault(partner: str, simulator: SimulatorDep) -> Response:
    return _clear_fault(simulator, partner, None)


@router.delete(
    "/faults/{partner}/{operation}", status_code=204, summary="Remove an operation's rule"
)
async def clear_operation_fault(partner: str, operation: str, simulator: SimulatorDep) -> Response:
    return _clear_fault(simulator, partner, operation)


@router.post(
    "/reset",
    summary="Forget everything: a fresh state from the seed, the start-up faults, the real clock",
)
async def reset(
    simulator: SimulatorDep, body: Annotated[ResetCreate | None, Body()] = None
) -> ResetRead:
    simulator.reset(body.seed if body else None)
    return ResetRead(seed=simulator.state.seed, now=simulator.state.clock.now())


@router.get("/clock", summary="The simulators' time")
async def read_clock(simulator: SimulatorDep) -> ClockRead:
    clock = simulator.state.clock
    return ClockRead(now=clock.now(), offset_seconds=clock.offset.total_seconds())


@router.post(
    "/clock/advance",
    summary="Move the simulators' time forward: reservations expire, usage accrues",
)
async def advance_clock(body: ClockAdvance, simulator: SimulatorDep) -> ClockRead:
    clock = simulator.state.clock
    now = clock.advance(body.seconds)
    return ClockRead(now=now, offset_seconds=clock.offset.total_seconds())


@router.get("/mno/activation", summary="How the network operator completes activations")
async def read_activation(simulator: SimulatorDep) -> ActivationSettingsRead:
    return ActivationSettingsRead.model_validate(simulator.state.operator.activation)


@router.put(
    "/mno/activation",
    summary="Make activations asynchronous (a delay, then a callback) and/or fail some",
)
async def set_activation(
    body: ActivationSettings, simulator: SimulatorDep
) -> ActivationSettingsRead:
    activation = simulator.state.operator.activation
    activation.delay_seconds = body.delay_seconds
    activation.failure_rate = body.failure_rate
    return ActivationSettingsRead.model_validate(activation)


@router.get("/mno/port-in", summary="How long port-ins take")
async def read_port_in(simulator: SimulatorDep) -> PortInSettingsRead:
    return PortInSettingsRead.model_validate(simulator.state.operator.port_in_config)


@router.put("/mno/port-in", summary="Set how long new port-ins take (0 ports at once)")
async def set_port_in(body: PortInSettings, simulator: SimulatorDep) -> PortInSettingsRead:
    config = simulator.state.operator.port_in_config
    config.delay_seconds = body.delay_seconds
    return PortInSettingsRead.model_validate(config)


@router.get("/mno/callbacks", summary="Activation callbacks sent, oldest first")
async def list_callbacks(simulator: SimulatorDep) -> CallbackPage:
    return CallbackPage(
        items=[CallbackDeliveryRead.model_validate(c) for c in simulator.state.callbacks]
    )


@router.get("/payments/accounts/{account_number}", summary="A bank account's balances")
async def read_bank_account(
    account_number: AccountNumber, simulator: SimulatorDep
) -> BankAccountRead:
    return BankAccountRead.model_validate(simulator.state.bank.account(account_number))


@router.put(
    "/payments/accounts/{account_number}",
    summary="Set a bank account's balance and whether it is blocked",
)
async def set_bank_account(
    account_number: AccountNumber, body: BankAccountUpdate, simulator: SimulatorDep
) -> BankAccountRead:
    account = simulator.state.bank.set_account(
        account_number, balance_cents=body.balance_cents, blocked=body.blocked
    )
    return BankAccountRead.model_validate(account)


@router.post(
    "/billing/bill-runs",
    status_code=201,
    summary="Invoice every open account for a period (this month by default)",
)
async def run_bill_run(
    simulator: SimulatorDep, body: Annotated[BillRunCreate | None, Body()] = None
) -> InvoicePage:
    invoices = simulator.state.billing.bill_run(body.period if body else None)
    return InvoicePage(items=[InvoiceRead.model_validate(invoice) for invoice in invoices])
