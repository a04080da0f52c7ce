"""Where an order's step is run: every step of the provisioning saga and every undo, one
function each, in the tables the executor runs them from (:data:`STEPS`, :data:`UNDOS`).

Each function takes one :class:`StepContext` (the order, the item, its progress, the step's
Idempotency-Key, the time, the store and the partners) and makes the step's partner call; a
step returns the results later steps need. A step may raise :class:`Waiting` (look again later)
or :class:`~mvno.orders.provisioning.clients.PartnerFailure` (the saga decides what follows).

The table says how each runs: :class:`Alone` when its only outcome is the order's own record (it
runs without a transaction, and its store offers nothing else to write), :class:`Locked` when it
writes a line or publishes events (it runs with the order locked in a unit of work).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from mvno.common.crypto import FieldCipher
from mvno.common.events.base import Allowance, Money
from mvno.common.events.orders import (
    AirtimeToppedUp,
    BundlePurchased,
    SubscriptionActivated,
    SubscriptionResumed,
    SubscriptionSuspended,
    SubscriptionTariffChanged,
    SubscriptionTerminated,
)
from mvno.orders.domain.model import Order, OrderItem, OrderState
from mvno.orders.domain.saga import (
    Compensate,
    Failure,
    ItemProgress,
    Move,
    RetryPolicy,
    Run,
    Step,
    Undo,
    waited_too_long,
)
from mvno.orders.provisioning.clients import Partner, PartnerFailure
from mvno.orders.provisioning.store import LockedStepStore, StepStore

Results = dict[str, Any]
"""What a step returns for later steps and undos (ids at the partners, the MSISDN)."""

StoreT_co = TypeVar("StoreT_co", bound=StepStore, covariant=True)
StoreT = TypeVar("StoreT", bound=StepStore)
R = TypeVar("R")

PORT_IN_POLL_CEILING = 60.0
"""A port-in can take days: it is looked at less often the longer it takes, at most this far apart."""


class Waiting(Exception):
    """The step waits for something outside (billing-sync's account, a port-in); look again
    after ``seconds`` (the executor's poll interval when None)."""

    def __init__(self, seconds: float | None = None) -> None:
        super().__init__()
        self.seconds = seconds


@dataclass(frozen=True)
class Partners:
    """Whom the steps call, and the key that seals what they keep of the customer."""

    network: Partner
    bank: Partner
    cipher: FieldCipher


@dataclass(frozen=True)
class Pacing:
    """How long steps wait and how often they look again."""

    policy: RetryPolicy
    poll_seconds: float
    event_wait_seconds: float
    """How often a step waiting for an event (the billing account) looks again without one."""


@dataclass(frozen=True)
class StepContext(Generic[StoreT_co]):
    """What one step (or undo) of one item works with."""

    order: Order
    item: OrderItem
    progress: ItemProgress
    """The item's progress: the step records what it waits for here."""
    key: str
    """The call's Idempotency-Key (order, item, step): the same on every try of the step."""
    at: datetime
    store: StoreT_co
    partners: Partners
    pacing: Pacing

    @property
    def results(self) -> Results:
        """What earlier steps of the item returned."""
        return self.progress.results


StepFn = Callable[[StepContext[StoreT]], Awaitable[Results]]
UndoFn = Callable[[StepContext[StoreT]], Awaitable[None]]


@dataclass(frozen=True)
class Alone(Generic[R]):
    """Runs without a transaction: its only outcome is the order's own record."""

    run: Callable[[StepContext[StepStore]], Awaitable[R]]


@dataclass(frozen=True)
class Locked(Generic[R]):
    """Runs with the order locked in a unit of work: it writes a line or publishes events."""

    run: Callable[[StepContext[LockedStepStore]], Awaitable[R]]


# --- forward ------------------------------------------------------------------------------------


async def authorise_payment(ctx: StepContext[StepStore]) -> Results:
    personal = await _personal(ctx)
    payment = await ctx.partners.bank.call(
        "POST",
        "/payments",
        key=ctx.key,
        json={
            "accountNumber": personal["payment_account"],
            "amountCents": int(ctx.item.amount_due() * 100),
            "currency": "ZAR",
            "reference": f"{ctx.order.id}/{ctx.item.item_id}",
        },
    )
    return {"payment_id": payment["id"]}


async def capture_payment(ctx: StepContext[StepStore]) -> Results:
    await ctx.partners.bank.call(
        "POST", f"/payments/{ctx.results['payment_id']}/capture", key=ctx.key, json={}
    )
    return {}


async def reserve_number(ctx: StepContext[StepStore]) -> Results:
    reservation = await ctx.partners.network.call(
        "POST", "/msisdn-reservations", key=ctx.key, json={}
    )
    return {"reservation_id": reservation["id"], "msisdn": reservation["msisdn"]}


async def start_port_in(ctx: StepContext[StepStore]) -> Results:
    port_in = await ctx.partners.network.call(
        "POST", "/port-ins", key=ctx.key, json={"msisdn": ctx.item.port_in_msisdn}
    )
    return {"port_in_id": port_in["id"]}


async def await_port_in(ctx: StepContext[StepStore]) -> Results:
    """The number once the donor network let it go; waits while the port is in progress."""
    port_in = await ctx.partners.network.call("GET", f"/port-ins/{ctx.results['port_in_id']}")
    if port_in["status"] == "completed":
        return {"reservation_id": port_in["reservationId"], "msisdn": port_in["msisdn"]}
    if port_in["status"] != "requested":
        reason = port_in.get("rejectionReason") or f"the port-in was {port_in['status']}"
        raise PartnerFailure(Failure(reason, retryable=False))
    state, at, pacing = ctx.progress, ctx.at, ctx.pacing
    if state.waiting_since is None:
        state.waiting_since = at.isoformat()
    if waited_too_long(state, pacing.policy, at, Step.AWAIT_PORT_IN):
        raise PartnerFailure(Failure("the number was not ported in time", retryable=False))
    waited = (at - datetime.fromisoformat(state.waiting_since)).total_seconds()
    raise Waiting(min(PORT_IN_POLL_CEILING, max(pacing.poll_seconds, waited / 10)))


async def register_rica(ctx: StepContext[StepStore]) -> Results:
    personal = await _personal(ctx)
    body: dict[str, Any] = {
        "msisdn": ctx.results["msisdn"],
        "fullName": personal["full_name"],
        "residentialAddress": json.loads(personal["address"]),
    }
    if personal["id_type"] == "sa_id":
        body["idNumber"] = personal["id_number"]
    else:
        body["passportNumber"] = personal["id_number"]
        body["passportCountry"] = personal.get("passport_country")
    documents = ctx.results.get("documents", 1)  # corrected documents: a new request
    registration = await ctx.partners.network.call(
        "POST", "/rica-registrations", key=f"{ctx.key}:{documents}", json=body
    )
    return {"rica_id": registration["id"]}


async def allocate_sim(ctx: StepContext[StepStore]) -> Results:
    network, order, item = ctx.partners.network, ctx.order, ctx.item
    if item.sim_kind == "eSIM":
        profile = await network.call("POST", "/esim-profiles", key=ctx.key, json={})
        sealed = await ctx.partners.cipher.seal(
            f"orders:{order.id}:{item.item_id}", {"activation_code": profile["activationCode"]}
        )
        return {
            "iccid": profile["iccid"],
            "activation_code": base64.b64encode(sealed.fields["activation_code"]).decode(),
            "activation_code_key": base64.b64encode(sealed.encrypted_data_key).decode(),
        }
    # A physical SIM from stock; orders spread over the stock so they rarely pick the same.
    stock = await network.call("GET", "/sims?kind=physical&status=available&limit=50")
    choices = [sim["iccid"] for sim in stock.get("items", [])]
    if not choices:
        raise PartnerFailure(Failure("no physical SIM in stock", retryable=True))
    spread = int(hashlib.sha256(ctx.key.encode()).hexdigest(), 16)
    return {"iccid": choices[spread % len(choices)]}


async def activate(ctx: StepContext[LockedStepStore]) -> Results:
    """Activate the line at the network operator, then add it to the inventory and announce it."""
    order, item, results, at = ctx.order, ctx.item, ctx.results, ctx.at
    if "pending_activation" in results:
        line = await _activation_outcome(ctx)
    else:
        tries = results.get("activation_tries", 0)
        try:
            line = await ctx.partners.network.call(
                "POST",
                "/subscriptions",
                # Another SIM (after a clash over one in stock) or another try after the
                # network failed an activation is another activation request.
                key=f"{ctx.key}:{results['iccid']}" + (f":{tries}" if tries else ""),
                json={
                    "msisdn": results["msisdn"],
                    "iccid": results["iccid"],
                    "tariffCode": tariff_code(str(item.offering_id)),
                },
            )
        except PartnerFailure as error:
            if "sim-unavailable" in error.failure.reason:
                # Another order took that physical SIM first: pick another and try again.
                ctx.progress.done.remove(str(Step.ALLOCATE_SIM))
                raise PartnerFailure(Failure(error.failure.reason, retryable=True)) from None
            raise
        if line.get("status") == "pending":
            # The network activates asynchronously: look at the line until it is done.
            results["pending_activation"] = line["id"]
            ctx.progress.waiting_since = at.isoformat()
            raise Waiting()
    store = ctx.store
    payment_type = (await store.payment_type_of(offering_id=str(item.offering_id))) or "prepaid"
    subscription_id = str(uuid.uuid4())
    secrets = None
    if "activation_code" in results:
        secrets = {"activation_code": results["activation_code"]}
    await store.add_line(
        values={
            "id": subscription_id,
            "customer_id": order.customer_id,
            "offering_id": item.offering_id,
            "status": "active",
            "msisdn": results["msisdn"],
            "sim_kind": item.sim_kind,
            "iccid": results["iccid"],
            "payment_type": payment_type,
            "sequence": 1,
            "order_id": order.id,
            "created_at": at,
            "updated_at": at,
            "secrets": secrets,
            "secrets_key": (base64.b64decode(results["activation_code_key"]) if secrets else None),
            "partner_subscription_id": line["id"],
        }
    )
    item.subscription_id = subscription_id
    store.publish(
        SubscriptionActivated(
            subscription_id=subscription_id,
            customer_id=order.customer_id,
            sequence=1,
            order_id=order.id,
            msisdn=results["msisdn"],
            offering_id=str(item.offering_id),
            payment_type=payment_type,
            sim_kind=item.sim_kind or "pSIM",
        )
    )
    return {"subscription_id": subscription_id, "partner_subscription_id": line["id"]}


async def _activation_outcome(ctx: StepContext[LockedStepStore]) -> dict[str, Any]:
    """The line of an asynchronous activation once the network finished it."""
    results = ctx.results
    line = await ctx.partners.network.call("GET", f"/subscriptions/{results['pending_activation']}")
    if line["status"] == "active":
        del results["pending_activation"]
        return line
    if line["status"] == "failed":
        # The network gave the SIM and the number back: a new request may succeed.
        del results["pending_activation"]
        results["activation_tries"] = results.get("activation_tries", 0) + 1
        reason = line.get("failureReason") or "the network failed the activation"
        raise PartnerFailure(Failure(reason, retryable=True))
    if waited_too_long(ctx.progress, ctx.pacing.policy, ctx.at, Step.ACTIVATE):
        raise PartnerFailure(Failure("the network did not finish the activation", retryable=False))
    raise Waiting()


async def await_billing_account(ctx: StepContext[StepStore]) -> Results:
    subscription_id = str(ctx.item.subscription_id)
    account = await ctx.store.billing_account_of(subscription_id=subscription_id)
    if account is not None:
        return {"billing_account_id": account}
    state, at, pacing = ctx.progress, ctx.at, ctx.pacing
    if state.waiting_since is None:
        state.waiting_since = at.isoformat()
    if waited_too_long(state, pacing.policy, at):
        raise PartnerFailure(Failure("the billing account was not opened in time", retryable=False))
    # billing-sync's answer wakes the order (the consumer's account_created); the timer is the
    # fallback, and fires at the latest when the wait runs out.
    waited = (at - datetime.fromisoformat(state.waiting_since)).total_seconds()
    left = pacing.policy.wait_limit(Step.AWAIT_BILLING_ACCOUNT) - waited
    raise Waiting(max(pacing.poll_seconds, min(pacing.event_wait_seconds, left + 0.05)))


async def change_tariff(ctx: StepContext[LockedStepStore]) -> Results:
    line = await _line(ctx)
    sequence = await ctx.store.update_line(
        subscription_id=line["id"],
        values={"offering_id": ctx.item.offering_id, "updated_at": ctx.at},
    )
    ctx.store.publish(
        SubscriptionTariffChanged(
            **_about(ctx, line),
            sequence=sequence,
            offering_id=str(ctx.item.offering_id),
            previous_offering_id=line["offering_id"],
            payment_type=line["payment_type"],
        )
    )
    return {}


async def swap_sim(ctx: StepContext[LockedStepStore]) -> Results:
    line = await _line(ctx)
    item = ctx.item
    iccid = item.progress["results"]["iccid"] if item.progress else None
    await ctx.partners.network.call(
        "POST",
        f"/subscriptions/{line['partner_subscription_id']}/sim-swap",
        key=ctx.key,
        json={"iccid": iccid},
    )
    await ctx.store.update_line(
        subscription_id=line["id"],
        values={"iccid": iccid, "sim_kind": item.sim_kind, "updated_at": ctx.at},
    )
    return {}


async def suspend(ctx: StepContext[LockedStepStore]) -> Results:
    line, sequence = await _line_to(ctx, action="suspend", status="suspended")
    ctx.store.publish(
        SubscriptionSuspended(**_about(ctx, line), sequence=sequence, reason="lost_or_stolen")
    )
    return {}


async def resume(ctx: StepContext[LockedStepStore]) -> Results:
    line, sequence = await _line_to(ctx, action="resume", status="active")
    ctx.store.publish(SubscriptionResumed(**_about(ctx, line), sequence=sequence))
    return {}


async def terminate(ctx: StepContext[LockedStepStore]) -> Results:
    line, sequence = await _line_to(ctx, action="terminate", status="terminated")
    ctx.store.publish(SubscriptionTerminated(**_about(ctx, line), sequence=sequence))
    return {}


async def _line(ctx: StepContext[LockedStepStore]) -> dict[str, Any]:
    """The line the item changes (checked to exist when the order was placed)."""
    line = await ctx.store.line(subscription_id=str(ctx.item.subscription_id))
    if line is None:
        raise LookupError(f"order {ctx.order.id}: there is no line {ctx.item.subscription_id}")
    return line


async def _line_to(
    ctx: StepContext[LockedStepStore], *, action: str, status: str
) -> tuple[dict[str, Any], int]:
    """Ask the network to ``action`` the line, then record its new ``status``: the line as it
    was, and its new event sequence."""
    line = await _line(ctx)
    await ctx.partners.network.call(
        "POST", f"/subscriptions/{line['partner_subscription_id']}/{action}", key=ctx.key, json={}
    )
    sequence = await ctx.store.update_line(
        subscription_id=line["id"], values={"status": status, "updated_at": ctx.at}
    )
    return line, sequence


def _about(ctx: StepContext[LockedStepStore], line: dict[str, Any]) -> dict[str, str]:
    """What every event about a line of the order carries."""
    return {
        "subscription_id": line["id"],
        "customer_id": ctx.order.customer_id,
        "order_id": ctx.order.id,
    }


async def _personal(ctx: StepContext[StepStore]) -> dict[str, str]:
    sealed = await ctx.store.personal_data(order_id=ctx.order.id)
    if sealed is None:
        raise PartnerFailure(Failure("the order holds no customer details", retryable=False))
    return await ctx.partners.cipher.open(f"orders:{ctx.order.id}", sealed)


def tariff_code(offering_id: str) -> str:
    """The network operator's tariff code for an offering: its id, upper case, at most 32."""
    return re.sub(r"[^A-Z0-9_-]", "_", offering_id.upper())[:32]


# --- backward -----------------------------------------------------------------------------------


async def void_payment(ctx: StepContext[StepStore]) -> None:
    await ctx.partners.bank.call(
        "POST", f"/payments/{ctx.results['payment_id']}/void", key=ctx.key, json={}
    )


async def refund_payment(ctx: StepContext[StepStore]) -> None:
    await ctx.partners.bank.call(
        "POST", f"/payments/{ctx.results['payment_id']}/refunds", key=ctx.key, json={}
    )


async def release_number(ctx: StepContext[StepStore]) -> None:
    await ctx.partners.network.call(
        "POST",
        f"/msisdn-reservations/{ctx.results['reservation_id']}/release",
        key=ctx.key,
        json={},
    )


async def cancel_port_in(ctx: StepContext[StepStore]) -> None:
    await ctx.partners.network.call(
        "POST", f"/port-ins/{ctx.results['port_in_id']}/cancel", key=ctx.key, json={}
    )


async def deactivate(ctx: StepContext[LockedStepStore]) -> None:
    results = ctx.results
    await ctx.partners.network.call(
        "POST",
        f"/subscriptions/{results['partner_subscription_id']}/terminate",
        key=ctx.key,
        json={},
    )
    sequence = await ctx.store.update_line(
        subscription_id=results["subscription_id"],
        values={"status": "terminated", "updated_at": ctx.at},
    )
    ctx.store.publish(
        SubscriptionTerminated(
            subscription_id=results["subscription_id"],
            customer_id=ctx.order.customer_id,
            sequence=sequence,
            order_id=ctx.order.id,
        )
    )


# --- the tables ---------------------------------------------------------------------------------

STEPS: dict[Step, Alone[Results] | Locked[Results]] = {
    Step.AUTHORISE_PAYMENT: Alone(authorise_payment),
    Step.RESERVE_NUMBER: Alone(reserve_number),
    Step.START_PORT_IN: Alone(start_port_in),
    Step.AWAIT_PORT_IN: Alone(await_port_in),
    Step.REGISTER_RICA: Alone(register_rica),
    Step.ALLOCATE_SIM: Alone(allocate_sim),
    Step.ACTIVATE: Locked(activate),
    Step.AWAIT_BILLING_ACCOUNT: Alone(await_billing_account),
    Step.SWAP_SIM: Locked(swap_sim),
    Step.SUSPEND: Locked(suspend),
    Step.RESUME: Locked(resume),
    Step.TERMINATE: Locked(terminate),
    Step.CHANGE_TARIFF: Locked(change_tariff),
    Step.CAPTURE_PAYMENT: Alone(capture_payment),
}
"""Each step of the saga, and how it runs."""

UNDOS: dict[Undo, Alone[None] | Locked[None]] = {
    Undo.VOID_PAYMENT: Alone(void_payment),
    Undo.REFUND_PAYMENT: Alone(refund_payment),
    Undo.RELEASE_NUMBER: Alone(release_number),
    Undo.CANCEL_PORT_IN: Alone(cancel_port_in),
    Undo.DEACTIVATE: Locked(deactivate),
}
"""What undoes each finished step, and how it runs."""


def runs_alone(move: Move) -> bool:
    """Whether the table lets ``move`` run without a transaction."""
    if isinstance(move, Run):
        return isinstance(STEPS[move.step], Alone)
    return isinstance(move, Compensate) and isinstance(UNDOS[move.undo], Alone)


# --- the end ------------------------------------------------------------------------------------


async def finish(order: Order, state: OrderState, at: datetime, store: LockedStepStore) -> None:
    """Move the order to its final ``state``; a completed order announces the bundles and
    airtime it bought."""
    order.move_to(state, at)
    if state is not OrderState.COMPLETED:
        return
    for item in order.items:
        if item.change not in ("bundle", "airtime"):
            continue
        line = await store.line(subscription_id=str(item.subscription_id))
        if line is None:
            raise LookupError(f"order {order.id}: there is no line {item.subscription_id}")
        paid = Money(amount=item.amount_due())
        common = {
            "subscription_id": line["id"],
            "customer_id": order.customer_id,
            "order_id": order.id,
            "order_item_id": item.item_id,
        }
        if item.change == "airtime":
            store.publish(AirtimeToppedUp(**common, amount=paid))
            continue
        offerings = await store.offerings(offering_ids=[str(item.offering_id)])
        allowance = offerings[str(item.offering_id)].allowance or {"validity_days": 30}
        valid = Allowance.model_validate(allowance)
        store.publish(
            BundlePurchased(
                **common,
                offering_id=str(item.offering_id),
                allowance=valid,
                price=paid,
                valid_from=at,
                valid_to=at + timedelta(days=valid.validity_days),
            )
        )
