"""The saga's executor: one step per work item, state persisted with the step's outcome.

A worker takes an ``orders.provisioning.step_due.v1`` work item, locks the order, asks the pure
saga (:mod:`mvno.orders.domain.saga`) what comes next, makes that one partner call, and commits
the outcome together with what follows: a timer for a retry, or the order's final state and its
events. The order stays locked while the call runs, so two workers never run one order's steps
at once; the calls' Idempotency-Keys make a step re-run after a crash harmless at the partner.

When a step succeeds, the same worker goes on with the next one in a new transaction rather than
sending itself another work item (each step is still committed on its own). What protects the
order if that worker dies is a lease: every commit that leaves more to do also sets the order's
timer a little ahead, and any worker takes up an order whose timer fired (:meth:`Provisioner.resume`).

Most of those next steps change nothing but the order (authorise a payment, reserve a number,
register RICA, ...): they run without a transaction on a plain connection (``steps_pool``): load
the order with its version, make the call, save the order only if it is still at that version
(:class:`~mvno.orders.repository.OrderSteps`). That is two round trips instead of five and no
SQLAlchemy session, on the path of most of an order's steps. Two workers on one order at once
(a lease that ran out, a redelivered work item) make the same call with the same
Idempotency-Key, so the partner acts once; the second save finds the order moved on and is
dropped. A step that writes more (the line, events, webhooks) runs locked as above. The step
after one saved alone starts from the order as saved (its new version is the saving statement's
transaction id), so only the first step of a run loads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.crypto import FieldCipher, Sealed
from mvno.common.db import StatementPool, UnitOfWork
from mvno.common.events.base import Allowance, Money
from mvno.common.events.orders import (
    AirtimeToppedUp,
    BundlePurchased,
    ProvisioningStepDue,
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
    Finish,
    Idle,
    ItemProgress,
    RetryAfter,
    RetryPolicy,
    Run,
    StartCompensating,
    Step,
    Undo,
    WaitForCustomer,
    failed,
    next_move,
    succeeded,
    waited_too_long,
)
from mvno.orders.handlers import announce
from mvno.orders.hub.directory import HubDirectory
from mvno.orders.provisioning.partners import Partner, PartnerFailure
from mvno.orders.repository import OrdersRepository, OrderSteps

_log = logging.getLogger(__name__)


class _Waiting(Exception):
    """The step waits for something outside (billing-sync's account, a port-in); look again
    after ``seconds`` (the executor's poll interval when None)."""

    def __init__(self, seconds: float | None = None) -> None:
        super().__init__()
        self.seconds = seconds


RUN_ALONE = frozenset(
    {
        Step.AUTHORISE_PAYMENT,
        Step.RESERVE_NUMBER,
        Step.START_PORT_IN,
        Step.AWAIT_PORT_IN,
        Step.REGISTER_RICA,
        Step.ALLOCATE_SIM,
        Step.AWAIT_BILLING_ACCOUNT,
        Step.CAPTURE_PAYMENT,
    }
)
"""Steps whose outcome is only the order's own record: they may run without a transaction."""

UNDO_ALONE = frozenset(Undo) - {Undo.DEACTIVATE}
"""Compensations likewise (deactivating also writes the line and announces it)."""

Reads = OrdersRepository | OrderSteps
"""What a step reads through: the unit of work's repository, or a plain connection's."""


def _runs_alone(order: Order, move: object) -> bool:
    """Whether ``move`` may run without a transaction (:meth:`Provisioner.advance_alone`)."""
    if order.state is not OrderState.IN_PROGRESS:
        return False
    if isinstance(move, Run):
        return move.step in RUN_ALONE
    return isinstance(move, Compensate) and move.undo in UNDO_ALONE


@dataclass(frozen=True)
class _Saved:
    """An order as a step saved it, with its version and the personal data read with it: the
    next step, run alone, starts from it instead of loading the order again."""

    order: Order
    version: int
    sealed: Sealed | None


@dataclass(frozen=True)
class _Moved:
    go_on: bool
    """Another move can follow at once."""
    alone_next: bool = False
    """That move may run without a transaction (known from the state just saved, so a step that
    needs the order locked does not load it twice)."""
    saved: _Saved | None = None
    """The order as saved, once its transaction committed, when that next move runs alone."""


def _moved(
    go_on: bool, order: Order, progress: dict[str, ItemProgress], saved: _Saved | None = None
) -> _Moved:
    alone_next = go_on and _runs_alone(order, next_move(order, progress))
    return _Moved(go_on, alone_next, saved if alone_next else None)


_IDLE = _Moved(go_on=False)
"""The order has nothing to do now (done, cancelled, pending on the customer, or unknown)."""


def _dropped(order_id: str) -> _Moved:
    _log.info("order %s was moved on by another worker; dropping this step", order_id)
    return _Moved(go_on=False)


PORT_IN_POLL_CEILING = 60.0
"""A port-in can take days: it is looked at less often the longer it takes, at most this far apart."""


def now() -> datetime:
    return datetime.now(UTC)


def step_due(uow: UnitOfWork, order_id: str) -> None:
    """Queue the order's next step as a work item, in the caller's transaction."""
    uow.publish(ProvisioningStepDue(order_id=order_id))


@dataclass
class Provisioner:
    network: Partner
    bank: Partner
    cipher: FieldCipher
    policy: RetryPolicy
    unit_of_work: Callable[[], UnitOfWork] | None = None
    """Opens the transactions of the steps after the first (the consumer opens the first)."""
    steps_pool: StatementPool | None = None
    """Plain connections for the steps after the first that run without a transaction."""
    hubs: HubDirectory | None = None
    """Each client's hubs held in memory, read at every state change of every order."""
    poll_seconds: float = 1.0
    lease_seconds: float = 30.0
    """How soon another worker resumes an order whose worker died between two steps."""
    event_wait_seconds: float = 10.0
    """How often a step waiting for an event (the billing account) looks again without one."""
    max_steps_in_a_row: int = 100
    rng: random.Random = field(default_factory=random.Random)  # backoff jitter, not secrets
    clock: Callable[[], datetime] = now

    async def advance(self, uow: UnitOfWork, event: ReceivedEvent) -> None:
        """Consumer handler for ``orders.provisioning.step_due.v1``: run steps while they succeed."""
        order_id = str(event.data["order_id"])
        moved = await self._advance_locked(uow, order_id)
        if not moved.go_on or self.unit_of_work is None:
            return
        await uow.commit()  # the first step, its lease and the work item's inbox row
        await self._go_on(order_id, moved)

    async def resume(self, order_id: str, *, lease_until: datetime) -> None:
        """Run the steps of an order whose timer fired (a retry's backoff over, a wait to look
        at again, the billing account's answer, a lease run out) while they succeed, as for a
        work item. Its timer was moved on to ``lease_until`` when it was taken; every step saved
        sets it anew, and an order with nothing to do loses it here."""
        assert self.unit_of_work is not None
        assert self.steps_pool is not None
        moved = await self.advance_alone(order_id)
        if moved is None:
            async with self.unit_of_work() as uow:
                moved = await self._advance_locked(uow, order_id)
                await uow.commit()
        if moved is _IDLE:
            async with self.steps_pool.acquire() as connection:
                await OrderSteps(connection).drop_timer(order_id=order_id, due_at=lease_until)
            return
        await self._go_on(order_id, moved)

    async def _go_on(self, order_id: str, moved: _Moved) -> None:
        """After a step that succeeded, run the next ones while they succeed."""
        if not moved.go_on or self.unit_of_work is None:
            return
        for _ in range(self.max_steps_in_a_row):
            next_moved = None
            if moved.alone_next and self.steps_pool is not None:
                next_moved = await self.advance_alone(order_id, moved.saved)
            if next_moved is None:
                async with self.unit_of_work() as next_uow:
                    next_moved = await self._advance_locked(next_uow, order_id)
                    await next_uow.commit()
            moved = next_moved
            if not moved.go_on:
                return
        async with self.unit_of_work() as next_uow:  # a very long order: hand it on
            step_due(next_uow, order_id)
            await next_uow.commit()

    async def advance_alone(self, order_id: str, saved: _Saved | None = None) -> _Moved | None:
        """Take the order's next move without a transaction when it changes only the order;
        None when it needs the order locked instead (:meth:`_advance_locked`). The order is
        loaded unless ``saved`` holds it as the step before saved it (a round trip less per
        step; if another worker moved it on since, this step's save is dropped as ever)."""
        assert self.steps_pool is not None
        async with self.steps_pool.acquire() as connection:
            steps = OrderSteps(connection)
            if saved is not None and saved.order.id == order_id:
                order, version = saved.order, saved.version
                steps.remember_personal_data(order_id, saved.sealed)
            else:
                loaded = await steps.load_order(order_id=order_id)
                if loaded is None:
                    return None
                order, version = loaded
            progress = {item.item_id: ItemProgress.from_json(item.progress) for item in order.items}
            move = next_move(order, progress)
            if isinstance(move, Idle):
                return _IDLE
            if not _runs_alone(order, move):
                return None
            assert isinstance(move, Run | Compensate)
            at = self.clock()
            timer = _Timer()
            go_on = await self._take(None, steps, order, progress, move, at, timer)
            for item in order.items:
                item.progress = progress[item.item_id].to_json()
            if not order.changes:
                new_version = await steps.save_order(
                    order=order, timer_due=timer.due, clear_timer=timer.cleared, if_version=version
                )
                if new_version is None:
                    return _dropped(order_id)
                sealed = steps.loaded_personal_data(order_id)
                return _moved(go_on, order, progress, _Saved(order, new_version, sealed))
        # The order changed state (a refusal the customer must fix): its events and webhooks are
        # written with it in a unit of work, still only if nobody moved the order on meanwhile.
        assert self.unit_of_work is not None
        async with self.unit_of_work() as uow:
            repository = OrdersRepository(uow.session)
            current = await repository.get_order_version(order_id=order_id)
            if current is None or current[1] != version:
                return _dropped(order_id)
            await repository.save_order(order=order, timer_due=timer.due, clear_timer=timer.cleared)
            await announce(uow, order, self.hubs)
            await uow.commit()
        return _moved(go_on, order, progress)

    async def _advance_locked(self, uow: UnitOfWork, order_id: str) -> _Moved:
        """Take the order's next move in ``uow``, the order locked."""
        repository = OrdersRepository(uow.session)
        order = await repository.get_order(order_id=order_id, for_update=True)
        if order is None:
            _log.warning("work item for unknown order %s", order_id)
            return _IDLE
        progress = {item.item_id: ItemProgress.from_json(item.progress) for item in order.items}
        move = next_move(order, progress)
        if isinstance(move, Idle):
            return _IDLE
        at = self.clock()
        if order.state is OrderState.ACKNOWLEDGED:
            order.move_to(OrderState.IN_PROGRESS, at)
        go_on = False
        timer = _Timer()
        if isinstance(move, Finish):
            await self._finish(uow, repository, order, move.state, at)
            timer.clear()
        else:
            go_on = await self._take(uow, repository, order, progress, move, at, timer)
        for item in order.items:
            item.progress = progress[item.item_id].to_json()
        version = await repository.save_order(
            order=order, timer_due=timer.due, clear_timer=timer.cleared
        )
        await announce(uow, order, self.hubs)
        saved = _Saved(order, version, repository.loaded_personal_data(order_id))
        return _moved(go_on, order, progress, saved)

    async def _take(
        self,
        uow: UnitOfWork | None,
        repository: Reads,
        order: Order,
        progress: dict[str, ItemProgress],
        move: Run | Compensate,
        at: datetime,
        timer: _Timer,
    ) -> bool:
        """Run a step or an undo; when another move can follow at once, set the lease."""
        if isinstance(move, Run):
            go_on = await self._run(uow, repository, order, progress, move, at, timer)
        else:
            go_on = await self._compensate(uow, repository, order, progress, move, at, timer)
        if go_on:
            timer.set(at + timedelta(seconds=self.lease_seconds))
        return go_on

    # --- forward ----------------------------------------------------------------------------

    async def _run(
        self,
        uow: UnitOfWork | None,
        repository: Reads,
        order: Order,
        progress: dict[str, ItemProgress],
        move: Run,
        at: datetime,
        timer: _Timer,
    ) -> bool:
        item = _item(order, move.item_id)
        state = progress[item.item_id]
        try:
            results = await self._step(uow, repository, order, item, state, move.step, at)
        except _Waiting as waiting:
            delay = self.poll_seconds if waiting.seconds is None else waiting.seconds
            timer.set(at + timedelta(seconds=delay))
            return False
        except PartnerFailure as error:
            outcome = failed(order, state, move.step, error.failure, self.policy, self.rng)
            _log.info(
                "order %s item %s step %s failed (try %s): %s",
                order.id, item.item_id, move.step, state.attempts, error.failure.reason,
            )  # fmt: skip
            if isinstance(outcome, RetryAfter):
                timer.set(at + timedelta(seconds=outcome.seconds))
                return False
            if isinstance(outcome, WaitForCustomer):
                order.move_to(OrderState.PENDING, at)
                timer.clear()
                return False
            assert isinstance(outcome, StartCompensating)
            return True
        succeeded(state, move.step, results)
        return True

    async def _step(
        self,
        uow: UnitOfWork | None,
        repository: Reads,
        order: Order,
        item: OrderItem,
        state: ItemProgress,
        step: Step,
        at: datetime,
    ) -> dict[str, Any]:
        key = f"{order.id}:{item.item_id}:{step}"
        results = state.results
        if step is Step.AUTHORISE_PAYMENT:
            personal = await self._personal(repository, order)
            payment = await self.bank.call(
                "POST",
                "/payments",
                key=key,
                json={
                    "accountNumber": personal["payment_account"],
                    "amountCents": int(item.amount_due() * 100),
                    "currency": "ZAR",
                    "reference": f"{order.id}/{item.item_id}",
                },
            )
            return {"payment_id": payment["id"]}
        if step is Step.CAPTURE_PAYMENT:
            await self.bank.call(
                "POST", f"/payments/{results['payment_id']}/capture", key=key, json={}
            )
            return {}
        if step is Step.RESERVE_NUMBER:
            reservation = await self.network.call("POST", "/msisdn-reservations", key=key, json={})
            return {"reservation_id": reservation["id"], "msisdn": reservation["msisdn"]}
        if step is Step.START_PORT_IN:
            port_in = await self.network.call(
                "POST", "/port-ins", key=key, json={"msisdn": item.port_in_msisdn}
            )
            return {"port_in_id": port_in["id"]}
        if step is Step.AWAIT_PORT_IN:
            return self._ported(
                await self.network.call("GET", f"/port-ins/{results['port_in_id']}"), state, at
            )
        if step is Step.REGISTER_RICA:
            personal = await self._personal(repository, order)
            body: dict[str, Any] = {
                "msisdn": results["msisdn"],
                "fullName": personal["full_name"],
                "residentialAddress": json.loads(personal["address"]),
            }
            if personal["id_type"] == "sa_id":
                body["idNumber"] = personal["id_number"]
            else:
                body["passportNumber"] = personal["id_number"]
                body["passportCountry"] = personal.get("passport_country")
            documents = results.get("documents", 1)  # corrected documents: a new request
            registration = await self.network.call(
                "POST", "/rica-registrations", key=f"{key}:{documents}", json=body
            )
            return {"rica_id": registration["id"]}
        if step is Step.ALLOCATE_SIM:
            return await self._allocate_sim(order, item, key)
        if step is Step.ACTIVATE:
            assert uow is not None  # runs locked: not in RUN_ALONE
            assert isinstance(repository, OrdersRepository)
            return await self._activate(uow, repository, order, item, state, key, at)
        if step is Step.AWAIT_BILLING_ACCOUNT:
            account = await repository.billing_account_of(subscription_id=str(item.subscription_id))
            if account is not None:
                return {"billing_account_id": account}
            if state.waiting_since is None:
                state.waiting_since = at.isoformat()
            if waited_too_long(state, self.policy, at):
                raise PartnerFailure(
                    Failure("the billing account was not opened in time", retryable=False)
                )
            # billing-sync's answer wakes the order (billing_answers.account_created); the timer
            # is the fallback, and fires at the latest when the wait runs out.
            waited = (at - datetime.fromisoformat(state.waiting_since)).total_seconds()
            left = self.policy.wait_limit(Step.AWAIT_BILLING_ACCOUNT) - waited
            raise _Waiting(max(self.poll_seconds, min(self.event_wait_seconds, left + 0.05)))
        assert uow is not None  # runs locked: not in RUN_ALONE
        assert isinstance(repository, OrdersRepository)
        return await self._change_line(uow, repository, order, item, step, key, at)

    def _ported(self, port_in: dict[str, Any], state: ItemProgress, at: datetime) -> dict[str, Any]:
        """The number once the donor network let it go; waits while the port is in progress."""
        if port_in["status"] == "completed":
            return {"reservation_id": port_in["reservationId"], "msisdn": port_in["msisdn"]}
        if port_in["status"] != "requested":
            reason = port_in.get("rejectionReason") or f"the port-in was {port_in['status']}"
            raise PartnerFailure(Failure(reason, retryable=False))
        if state.waiting_since is None:
            state.waiting_since = at.isoformat()
        if waited_too_long(state, self.policy, at, Step.AWAIT_PORT_IN):
            raise PartnerFailure(Failure("the number was not ported in time", retryable=False))
        waited = (at - datetime.fromisoformat(state.waiting_since)).total_seconds()
        raise _Waiting(min(PORT_IN_POLL_CEILING, max(self.poll_seconds, waited / 10)))

    async def _allocate_sim(self, order: Order, item: OrderItem, key: str) -> dict[str, Any]:
        if item.sim_kind == "eSIM":
            profile = await self.network.call("POST", "/esim-profiles", key=key, json={})
            sealed = await self.cipher.seal(
                f"orders:{order.id}:{item.item_id}", {"activation_code": profile["activationCode"]}
            )
            return {
                "iccid": profile["iccid"],
                "activation_code": base64.b64encode(sealed.fields["activation_code"]).decode(),
                "activation_code_key": base64.b64encode(sealed.encrypted_data_key).decode(),
            }
        # A physical SIM from stock; orders spread over the stock so they rarely pick the same.
        stock = await self.network.call("GET", "/sims?kind=physical&status=available&limit=50")
        choices = [sim["iccid"] for sim in stock.get("items", [])]
        if not choices:
            raise PartnerFailure(Failure("no physical SIM in stock", retryable=True))
        spread = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        return {"iccid": choices[spread % len(choices)]}

    async def _activate(
        self,
        uow: UnitOfWork,
        repository: OrdersRepository,
        order: Order,
        item: OrderItem,
        state: ItemProgress,
        key: str,
        at: datetime,
    ) -> dict[str, Any]:
        results = state.results
        if "pending_activation" in results:
            line = await self._activation_outcome(state, at)
        else:
            tries = results.get("activation_tries", 0)
            try:
                line = await self.network.call(
                    "POST",
                    "/subscriptions",
                    # Another SIM (after a clash over one in stock) or another try after the
                    # network failed an activation is another activation request.
                    key=f"{key}:{results['iccid']}" + (f":{tries}" if tries else ""),
                    json={
                        "msisdn": results["msisdn"],
                        "iccid": results["iccid"],
                        "tariffCode": tariff_code(str(item.offering_id)),
                    },
                )
            except PartnerFailure as error:
                if "sim-unavailable" in error.failure.reason:
                    # Another order took that physical SIM first: pick another and try again.
                    state.done.remove(str(Step.ALLOCATE_SIM))
                    raise PartnerFailure(Failure(error.failure.reason, retryable=True)) from None
                raise
            if line.get("status") == "pending":
                # The network activates asynchronously: look at the line until it is done.
                results["pending_activation"] = line["id"]
                state.waiting_since = at.isoformat()
                raise _Waiting()
        payment_type = (
            await repository.payment_type_of(offering_id=str(item.offering_id))
        ) or "prepaid"
        subscription_id = str(uuid.uuid4())
        secrets = None
        if "activation_code" in results:
            secrets = {"activation_code": results["activation_code"]}
        await repository.add_subscription(
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
                "secrets_key": (
                    base64.b64decode(results["activation_code_key"]) if secrets else None
                ),
                "partner_subscription_id": line["id"],
            }
        )
        item.subscription_id = subscription_id
        uow.publish(
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

    async def _activation_outcome(self, state: ItemProgress, at: datetime) -> dict[str, Any]:
        """The line of an asynchronous activation once the network finished it."""
        results = state.results
        line = await self.network.call("GET", f"/subscriptions/{results['pending_activation']}")
        if line["status"] == "active":
            del results["pending_activation"]
            return line
        if line["status"] == "failed":
            # The network gave the SIM and the number back: a new request may succeed.
            del results["pending_activation"]
            results["activation_tries"] = results.get("activation_tries", 0) + 1
            reason = line.get("failureReason") or "the network failed the activation"
            raise PartnerFailure(Failure(reason, retryable=True))
        if waited_too_long(state, self.policy, at, Step.ACTIVATE):
            raise PartnerFailure(
                Failure("the network did not finish the activation", retryable=False)
            )
        raise _Waiting()

    async def _change_line(
        self,
        uow: UnitOfWork,
        repository: OrdersRepository,
        order: Order,
        item: OrderItem,
        step: Step,
        key: str,
        at: datetime,
    ) -> dict[str, Any]:
        line = await repository.get_subscription(subscription_id=str(item.subscription_id))
        assert line is not None  # checked when the order was placed
        partner_id = line["partner_subscription_id"]
        common = {
            "subscription_id": line["id"],
            "customer_id": order.customer_id,
            "order_id": order.id,
        }
        if step is Step.CHANGE_TARIFF:
            sequence = await repository.update_subscription(
                subscription_id=line["id"],
                values={"offering_id": item.offering_id, "updated_at": at},
            )
            uow.publish(
                SubscriptionTariffChanged(
                    **common,
                    sequence=sequence,
                    offering_id=str(item.offering_id),
                    previous_offering_id=line["offering_id"],
                    payment_type=line["payment_type"],
                )
            )
            return {}
        if step is Step.SWAP_SIM:
            iccid = item.progress["results"]["iccid"] if item.progress else None
            await self.network.call(
                "POST", f"/subscriptions/{partner_id}/sim-swap", key=key, json={"iccid": iccid}
            )
            await repository.update_subscription(
                subscription_id=line["id"],
                values={"iccid": iccid, "sim_kind": item.sim_kind, "updated_at": at},
            )
            return {}
        action, status, event = {
            Step.SUSPEND: ("suspend", "suspended", SubscriptionSuspended),
            Step.RESUME: ("resume", "active", SubscriptionResumed),
            Step.TERMINATE: ("terminate", "terminated", SubscriptionTerminated),
        }[step]
        await self.network.call("POST", f"/subscriptions/{partner_id}/{action}", key=key, json={})
        sequence = await repository.update_subscription(
            subscription_id=line["id"], values={"status": status, "updated_at": at}
        )
        extra = {"reason": "lost_or_stolen"} if step is Step.SUSPEND else {}
        uow.publish(event(**common, sequence=sequence, **extra))
        return {}

    # --- backward ---------------------------------------------------------------------------

    async def _compensate(
        self,
        uow: UnitOfWork | None,
        repository: Reads,
        order: Order,
        progress: dict[str, ItemProgress],
        move: Compensate,
        at: datetime,
        timer: _Timer,
    ) -> bool:
        item = _item(order, move.item_id)
        state = progress[item.item_id]
        key = f"{order.id}:{item.item_id}:{move.undo}"
        results = state.results
        try:
            if move.undo is Undo.VOID_PAYMENT:
                await self.bank.call(
                    "POST", f"/payments/{results['payment_id']}/void", key=key, json={}
                )
            elif move.undo is Undo.REFUND_PAYMENT:
                await self.bank.call(
                    "POST", f"/payments/{results['payment_id']}/refunds", key=key, json={}
                )
            elif move.undo is Undo.RELEASE_NUMBER:
                await self.network.call(
                    "POST",
                    f"/msisdn-reservations/{results['reservation_id']}/release",
                    key=key,
                    json={},
                )
            elif move.undo is Undo.CANCEL_PORT_IN:
                await self.network.call(
                    "POST", f"/port-ins/{results['port_in_id']}/cancel", key=key, json={}
                )
            elif move.undo is Undo.DEACTIVATE:
                assert uow is not None  # runs locked: not in UNDO_ALONE
                assert isinstance(repository, OrdersRepository)
                await self.network.call(
                    "POST",
                    f"/subscriptions/{results['partner_subscription_id']}/terminate",
                    key=key,
                    json={},
                )
                sequence = await repository.update_subscription(
                    subscription_id=results["subscription_id"],
                    values={"status": "terminated", "updated_at": at},
                )
                uow.publish(
                    SubscriptionTerminated(
                        subscription_id=results["subscription_id"],
                        customer_id=order.customer_id,
                        sequence=sequence,
                        order_id=order.id,
                    )
                )
        except PartnerFailure as error:
            if error.failure.retryable:
                state.attempts += 1
                delay = self.policy.delay(min(state.attempts, 10), self.rng)
                timer.set(at + timedelta(seconds=delay))
                return False
            # A refusal to undo (already voided, already released) leaves nothing to undo.
            _log.warning("order %s: %s answered %s; counted as undone", order.id, move.undo, error)
        state.undone.append(str(move.undo))
        state.attempts = 0
        return True

    # --- the end ----------------------------------------------------------------------------

    async def _finish(
        self,
        uow: UnitOfWork,
        repository: OrdersRepository,
        order: Order,
        state: OrderState,
        at: datetime,
    ) -> None:
        order.move_to(state, at)
        if state is not OrderState.COMPLETED:
            return
        for item in order.items:
            if item.change not in ("bundle", "airtime"):
                continue
            line = await repository.get_subscription(subscription_id=str(item.subscription_id))
            assert line is not None
            paid = Money(amount=item.amount_due())
            common = {
                "subscription_id": line["id"],
                "customer_id": order.customer_id,
                "order_id": order.id,
                "order_item_id": item.item_id,
            }
            if item.change == "airtime":
                uow.publish(AirtimeToppedUp(**common, amount=paid))
                continue
            offerings = await repository.offerings(offering_ids=[str(item.offering_id)])
            allowance = offerings[str(item.offering_id)].allowance or {"validity_days": 30}
            valid = Allowance.model_validate(allowance)
            uow.publish(
                BundlePurchased(
                    **common,
                    offering_id=str(item.offering_id),
                    allowance=valid,
                    price=paid,
                    valid_from=at,
                    valid_to=at + timedelta(days=valid.validity_days),
                )
            )

    async def _personal(self, repository: Reads, order: Order) -> dict[str, str]:
        sealed = await repository.personal_data(order_id=order.id)
        if sealed is None:
            raise PartnerFailure(Failure("the order holds no customer details", retryable=False))
        return await self.cipher.open(f"orders:{order.id}", sealed)


def tariff_code(offering_id: str) -> str:
    """The network operator's tariff code for an offering: its id, upper case, at most 32."""
    return re.sub(r"[^A-Z0-9_-]", "_", offering_id.upper())[:32]


@dataclass
class _Timer:
    """What a move does to the order's timer, written with the order in one statement."""

    due: datetime | None = None
    cleared: bool = False

    def set(self, due: datetime) -> None:
        self.due, self.cleared = due, False

    def clear(self) -> None:
        self.due, self.cleared = None, True


def _item(order: Order, item_id: str) -> OrderItem:
    return next(item for item in order.items if item.item_id == item_id)
