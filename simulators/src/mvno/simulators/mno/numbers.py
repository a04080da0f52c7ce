"""The MSISDN pool: South African mobile numbers in E.164, reserved, released and assigned.

A reservation holds a number for a limited time; one left to expire goes back to the pool the
next time the pool is used, as at a real operator whose reservations lapse on their own.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import phonenumbers

from mvno.simulators.errors import Conflict, Invalid, NotFound
from mvno.simulators.ids import new_id

# Mobile ranges of the South African numbering plan (06x, 07x, 08x without the non-mobile 080x
# and 086x-089x): +27 and nine digits.
MOBILE_PREFIXES = (
    "60",
    "61",
    "62",
    "63",
    "64",
    "65",
    "66",
    "67",
    "71",
    "72",
    "73",
    "74",
    "76",
    "78",
    "79",
    "81",
    "82",
    "83",
    "84",
)


class NumberStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    ASSIGNED = "assigned"


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"
    USED = "used"  # the number went into a subscription


@dataclass
class Reservation:
    id: str
    msisdn: str
    status: ReservationStatus
    reserved_at: datetime
    expires_at: datetime


def is_sa_mobile(msisdn: str) -> bool:
    """A South African mobile number written in E.164 (``+27`` and nine digits)."""
    try:
        number = phonenumbers.parse(msisdn, None)
    except phonenumbers.NumberParseException:
        return False
    return (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == msisdn
        and phonenumbers.region_code_for_number(number) == "ZA"
        and phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    )


def generate_numbers(rng: random.Random, size: int) -> list[str]:
    numbers: dict[str, None] = {}
    while len(numbers) < size:
        candidate = f"+27{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"
        if candidate not in numbers and is_sa_mobile(candidate):
            numbers[candidate] = None
    return list(numbers)


class NumberPool:
    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng = rng
        self.status = dict.fromkeys(generate_numbers(rng, size), NumberStatus.AVAILABLE)
        # Available numbers in a list with their positions, so that a random pick and the
        # removal of a chosen number both cost O(1) whatever the pool's size.
        self.available = list(self.status)
        self.position = {msisdn: index for index, msisdn in enumerate(self.available)}
        self.reservations: dict[str, Reservation] = {}
        self.active_reservation: dict[str, str] = {}  # msisdn -> reservation id
        self.expiries: list[tuple[datetime, str]] = []  # heap of (expires_at, reservation id)

    def expire(self, now: datetime) -> None:
        while self.expiries and self.expiries[0][0] <= now:
            _, reservation_id = heapq.heappop(self.expiries)
            reservation = self.reservations[reservation_id]
            if reservation.status is ReservationStatus.ACTIVE:
                reservation.status = ReservationStatus.EXPIRED
                self._free(reservation.msisdn)

    def reserve(self, msisdn: str | None, *, hold: timedelta, now: datetime) -> Reservation:
        self.expire(now)
        if msisdn is None:
            if not self.available:
                raise Conflict("pool-exhausted", "No number is available in the pool")
            msisdn = self.available[self.rng.randrange(len(self.available))]
        else:
            status = self._status_of(msisdn)
            if status is not NumberStatus.AVAILABLE:
                raise Conflict("msisdn-unavailable", f"{msisdn} is {status.value}", msisdn=msisdn)
        self._take(msisdn, NumberStatus.RESERVED)
        reservation = Reservation(
            id=new_id(self.rng),
            msisdn=msisdn,
            status=ReservationStatus.ACTIVE,
            reserved_at=now,
            expires_at=now + hold,
        )
        self.reservations[reservation.id] = reservation
        self.active_reservation[msisdn] = reservation.id
        heapq.heappush(self.expiries, (reservation.expires_at, reservation.id))
        return reservation

    def is_ours(self, msisdn: str) -> bool:
        """Whether the number is on this network (in the pool, whatever its status)."""
        return msisdn in self.status

    def hold_ported(self, msisdn: str, *, hold: timedelta, now: datetime) -> Reservation:
        """A number ported in from another network joins the pool, reserved for the platform."""
        if msisdn in self.status:
            raise Conflict("msisdn-on-network", f"{msisdn} is already on this network")
        self.status[msisdn] = NumberStatus.AVAILABLE
        self.position[msisdn] = len(self.available)
        self.available.append(msisdn)
        return self.reserve(msisdn, hold=hold, now=now)

    def release(self, reservation_id: str, *, now: datetime) -> Reservation:
        reservation = self.reservation(reservation_id, now=now)
        if reservation.status is not ReservationStatus.ACTIVE:
            raise Conflict(
                "reservation-not-active",
                f"The reservation is {reservation.status.value}",
                reservationStatus=reservation.status.value,
            )
        reservation.status = ReservationStatus.RELEASED
        self._free(reservation.msisdn)
        return reservation

    def reservation(self, reservation_id: str, *, now: datetime) -> Reservation:
        self.expire(now)
        try:
            return self.reservations[reservation_id]
        except KeyError:
            raise NotFound("reservation-not-found", "No such reservation") from None

    def active_reservation_of(self, msisdn: str, *, now: datetime) -> Reservation | None:
        self.expire(now)
        reservation_id = self.active_reservation.get(msisdn)
        return self.reservations[reservation_id] if reservation_id else None

    def is_held(self, msisdn: str, *, now: datetime) -> bool:
        """Reserved or assigned: a number a RICA registration may be made for."""
        self.expire(now)
        return self._status_of(msisdn) is not NumberStatus.AVAILABLE

    def assign(self, reservation: Reservation) -> None:
        reservation.status = ReservationStatus.USED
        del self.active_reservation[reservation.msisdn]
        self.status[reservation.msisdn] = NumberStatus.ASSIGNED

    def unassign(self, msisdn: str) -> None:
        """A terminated line's number returns to the pool."""
        self._free(msisdn)

    def restore_reservation(self, reservation: Reservation) -> None:
        """An activation that failed gives its number back to the reservation it came from."""
        reservation.status = ReservationStatus.ACTIVE
        self.active_reservation[reservation.msisdn] = reservation.id
        self.status[reservation.msisdn] = NumberStatus.RESERVED
        heapq.heappush(self.expiries, (reservation.expires_at, reservation.id))

    def numbers(self, status: NumberStatus | None, limit: int) -> list[tuple[str, NumberStatus]]:
        chosen = []
        for msisdn, number_status in self.status.items():
            if status is None or number_status is status:
                chosen.append((msisdn, number_status))
                if len(chosen) == limit:
                    break
        return chosen

    def _status_of(self, msisdn: str) -> NumberStatus:
        if not is_sa_mobile(msisdn):
            raise Invalid(
                "msisdn-invalid", f"{msisdn} is not a South African mobile number in E.164"
            )
        try:
            return self.status[msisdn]
        except KeyError:
            raise NotFound("msisdn-not-found", f"{msisdn} is not in the pool") from None

    def _take(self, msisdn: str, status: NumberStatus) -> None:
        index = self.position.pop(msisdn)
        last = self.available.pop()
        if last != msisdn:
            self.available[index] = last
            self.position[last] = index
        self.status[msisdn] = status

    def _free(self, msisdn: str) -> None:
        self.active_reservation.pop(msisdn, None)
        self.status[msisdn] = NumberStatus.AVAILABLE
        self.position[msisdn] = len(self.available)
        self.available.append(msisdn)
