"""The host network operator: numbers, SIMs, RICA, subscriptions and usage behind one face.

Activation is asynchronous at a real operator. Here it completes at once unless an activation
delay is configured; then the subscription stays ``pending`` until :meth:`complete_activation`
is called (by :mod:`mvno.simulators.mno.activations` after the delay), which may also fail it
at the configured failure rate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from mvno.simulators.clock import Clock
from mvno.simulators.errors import Conflict, Invalid, NotFound
from mvno.simulators.ids import new_id
from mvno.simulators.mno import rica
from mvno.simulators.mno.numbers import (
    NumberPool,
    NumberStatus,
    Reservation,
    ReservationStatus,
    is_sa_mobile,
)
from mvno.simulators.mno.ports import DONOR_REFUSAL, PortIn, PortInConfig, PortInStatus
from mvno.simulators.mno.sims import Sim, SimInventory
from mvno.simulators.mno.subscriptions import Subscription, SubscriptionStatus
from mvno.simulators.mno.usage import UsageLedger, UsageRecord

ACTIVATION_FAILURE = "The network rejected the activation"
PORTED_NUMBER_HOLD = timedelta(days=7)
"""How long a ported-in number stays reserved for the platform to activate it."""


@dataclass
class ActivationConfig:
    """How activations behave; the admin endpoint changes it at run time."""

    delay_seconds: float = 0.0
    failure_rate: float = 0.0


@dataclass(frozen=True)
class OperatorConfig:
    number_pool_size: int
    physical_sim_stock: int
    smdp_host: str
    usage_interval: timedelta | None


class NetworkOperator:
    def __init__(
        self,
        rng: random.Random,
        clock: Clock,
        config: OperatorConfig,
        activation: ActivationConfig,
        port_in: PortInConfig | None = None,
    ) -> None:
        self.rng = rng
        self.clock = clock
        self.activation = activation
        self.port_in_config = port_in or PortInConfig()
        self.port_ins: dict[str, PortIn] = {}
        self.open_port_in: dict[str, str] = {}  # msisdn -> id of its requested port-in
        self.numbers = NumberPool(rng, config.number_pool_size)
        self.sims = SimInventory(
            rng, physical_stock=config.physical_sim_stock, smdp_host=config.smdp_host
        )
        self.registrations: dict[str, rica.RicaRegistration] = {}
        self.registration_of: dict[str, str] = {}  # msisdn -> latest registration id
        self.subscriptions: dict[str, Subscription] = {}
        self.active: dict[str, Subscription] = {}  # the ones that accrue usage
        self.usage = UsageLedger(rng, interval=config.usage_interval)

    # Numbers

    def reserve_number(self, msisdn: str | None, hold_seconds: int) -> Reservation:
        return self.numbers.reserve(
            msisdn, hold=timedelta(seconds=hold_seconds), now=self.clock.now()
        )

    def release_reservation(self, reservation_id: str) -> Reservation:
        return self.numbers.release(reservation_id, now=self.clock.now())

    def reservation(self, reservation_id: str) -> Reservation:
        return self.numbers.reservation(reservation_id, now=self.clock.now())

    # Port-ins

    def request_port_in(self, msisdn: str) -> PortIn:
        if not is_sa_mobile(msisdn):
            raise Invalid(
                "msisdn-invalid", f"{msisdn} is not a South African mobile number in E.164"
            )
        if self.numbers.is_ours(msisdn):
            raise Conflict("msisdn-on-network", f"{msisdn} is already on this network")
        if msisdn in self.open_port_in:
            raise Conflict(
                "port-in-open",
                f"{msisdn} already has a port-in in progress",
                portInId=self.open_port_in[msisdn],
            )
        now = self.clock.now()
        port_in = PortIn(
            id=new_id(self.rng),
            msisdn=msisdn,
            status=PortInStatus.REQUESTED,
            requested_at=now,
            completes_at=now + timedelta(seconds=self.port_in_config.delay_seconds),
        )
        self.port_ins[port_in.id] = port_in
        self.open_port_in[msisdn] = port_in.id
        return self.port_in(port_in.id)

    def port_in(self, port_in_id: str) -> PortIn:
        """A port-in as it stands now: one whose porting window has come is completed or refused."""
        try:
            port_in = self.port_ins[port_in_id]
        except KeyError:
            raise NotFound("port-in-not-found", "No such port-in") from None
        now = self.clock.now()
        if port_in.status is PortInStatus.REQUESTED and now >= port_in.completes_at:
            del self.open_port_in[port_in.msisdn]
            if port_in.refused_by_donor():
                port_in.status = PortInStatus.REJECTED
                port_in.rejection_reason = DONOR_REFUSAL
            else:
                reservation = self.numbers.hold_ported(
                    port_in.msisdn, hold=PORTED_NUMBER_HOLD, now=now
                )
                port_in.status = PortInStatus.COMPLETED
                port_in.completed_at = now
                port_in.reservation_id = reservation.id
        return port_in

    def cancel_port_in(self, port_in_id: str) -> PortIn:
        """Withdraw a port-in; a completed one gives the number up (its reservation is released)."""
        port_in = self.port_in(port_in_id)
        if port_in.status is PortInStatus.REQUESTED:
            del self.open_port_in[port_in.msisdn]
            port_in.status = PortInStatus.CANCELLED
        elif port_in.status is PortInStatus.COMPLETED:
            assert port_in.reservation_id is not None
            reservation = self.numbers.reservation(port_in.reservation_id, now=self.clock.now())
            in_service = self.numbers.status.get(port_in.msisdn) is NumberStatus.ASSIGNED
            if reservation.status is ReservationStatus.USED and in_service:
                raise Conflict(
                    "port-in-in-use",
                    "The ported number is in a subscription; terminate it first",
                )
            if reservation.status is ReservationStatus.ACTIVE:
                self.numbers.release(reservation.id, now=self.clock.now())
            port_in.status = PortInStatus.CANCELLED
        return port_in

    # SIMs

    def allocate_esim(self) -> Sim:
        return self.sims.allocate_esim()

    # RICA

    def register_rica(
        self,
        *,
        msisdn: str,
        id_number: str | None,
        passport_number: str | None,
        passport_country: str | None,
        full_name: str,
        address: rica.Address,
    ) -> rica.RicaRegistration:
        identity = rica.check_identity(
            id_number=id_number, passport_number=passport_number, passport_country=passport_country
        )
        if not self.numbers.is_held(msisdn, now=self.clock.now()):
            raise Conflict("msisdn-not-held", f"{msisdn} is neither reserved nor in a subscription")
        registration = rica.register(
            self.rng,
            msisdn=msisdn,
            identity=identity,
            full_name=full_name,
            address=address,
            now=self.clock.now(),
        )
        self.registrations[registration.id] = registration
        self.registration_of[msisdn] = registration.id
        return registration

    def registration(self, registration_id: str) -> rica.RicaRegistration:
        try:
            return self.registrations[registration_id]
        except KeyError:
            raise NotFound("rica-registration-not-found", "No such RICA registration") from None

    # Subscriptions

    def activate(
        self, *, msisdn: str, iccid: str, tariff_code: str, callback_url: str | None
    ) -> Subscription:
        now = self.clock.now()
        reservation = self.numbers.active_reservation_of(msisdn, now=now)
        if reservation is None:
            raise Conflict("msisdn-not-reserved", f"{msisdn} has no active reservation")
        if msisdn not in self.registration_of:
            raise Conflict("rica-required", f"{msisdn} has no RICA registration")
        subscription_id = new_id(self.rng)
        try:
            sim = self.sims.take_for(iccid, subscription_id)
        except NotFound as error:
            raise Invalid(error.slug, error.detail) from None
        self.numbers.assign(reservation)
        subscription = Subscription(
            id=subscription_id,
            msisdn=msisdn,
            iccid=sim.iccid,
            sim_kind=sim.kind,
            tariff_code=tariff_code,
            status=SubscriptionStatus.PENDING,
            created_at=now,
            reservation_id=reservation.id,
            callback_url=callback_url,
        )
        self.subscriptions[subscription.id] = subscription
        if self.activation.delay_seconds <= 0:
            self.complete_activation(subscription.id)
        return subscription

    def complete_activation(self, subscription_id: str) -> Subscription:
        """The network finishes a pending activation: active, or failed at the failure rate.

        A failed activation gives the SIM back and the number back to its reservation, so the
        platform can retry or compensate (release the number) as it would with a real operator.
        """
        subscription = self.subscription(subscription_id)
        if self.rng.random() < self.activation.failure_rate:
            subscription.mark_failed(ACTIVATION_FAILURE)
            self.sims.give_back(self.sims.sims[subscription.iccid])
            self.numbers.restore_reservation(self.numbers.reservations[subscription.reservation_id])
            return subscription
        subscription.mark_active(self.clock.now())
        self.active[subscription.id] = subscription
        return subscription

    def subscription(self, subscription_id: str) -> Subscription:
        try:
            return self.subscriptions[subscription_id]
        except KeyError:
            raise NotFound("subscription-not-found", "No such subscription") from None

    def suspend(self, subscription_id: str, reason: str | None) -> Subscription:
        subscription = self._accrued(subscription_id)
        subscription.suspend(reason, self.clock.now())
        self.active.pop(subscription.id, None)
        return subscription

    def resume(self, subscription_id: str) -> Subscription:
        subscription = self.subscription(subscription_id)
        subscription.resume(self.clock.now())
        self.active[subscription.id] = subscription
        return subscription

    def terminate(self, subscription_id: str) -> Subscription:
        subscription = self._accrued(subscription_id)
        subscription.terminate(self.clock.now())
        self.active.pop(subscription.id, None)
        self.sims.retire(self.sims.sims[subscription.iccid])
        self.numbers.unassign(subscription.msisdn)
        self.registration_of.pop(subscription.msisdn, None)
        return subscription

    def swap_sim(self, subscription_id: str, iccid: str) -> Subscription:
        subscription = self.subscription(subscription_id)
        subscription.require(
            SubscriptionStatus.ACTIVE, SubscriptionStatus.SUSPENDED, action="swap the SIM of"
        )
        try:
            new_sim = self.sims.take_for(iccid, subscription.id)
        except NotFound as error:
            raise Invalid(error.slug, error.detail) from None
        self.sims.retire(self.sims.sims[subscription.iccid])
        subscription.swap_to(new_sim.iccid, new_sim.kind)
        return subscription

    # Usage

    def usage_records(
        self, *, after: int, limit: int, subscription_id: str | None
    ) -> list[UsageRecord]:
        now = self.clock.now()
        if subscription_id is not None:
            self.subscription(subscription_id)  # 404 for an unknown one
        for subscription in list(self.active.values()):
            self.usage.accrue(subscription, now)
        return self.usage.page(after=after, limit=limit, subscription_id=subscription_id)

    def _accrued(self, subscription_id: str) -> Subscription:
        subscription = self.subscription(subscription_id)
        if subscription.status is SubscriptionStatus.ACTIVE:
            self.usage.accrue(subscription, self.clock.now())
        return subscription
