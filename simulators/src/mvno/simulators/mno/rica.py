"""RICA registration: the identity of the person a mobile number belongs to.

South African law (RICA) forbids activating a SIM before its user is registered with a South
African ID number (13 digits: date of birth, gender, citizenship and a Luhn check digit) or a
passport number with its issuing country, a full name and a residential address. A registration
that falls short is refused with a stable reason code the platform can show or act on.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import pycountry
from stdnum.exceptions import ValidationError
from stdnum.za import idnr

from mvno.simulators.errors import Invalid
from mvno.simulators.ids import new_id

PASSPORT_NUMBER = re.compile(r"[A-Z0-9]{6,12}")
POSTAL_CODE = re.compile(r"\d{4}")


class IdentityKind(StrEnum):
    SA_ID = "sa-id"
    PASSPORT = "passport"


@dataclass(frozen=True)
class Identity:
    kind: IdentityKind
    number: str
    country: str  # ISO 3166-1 alpha-2; ZA for a South African ID
    birth_date: date | None = None


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    postal_code: str
    line2: str | None = None
    suburb: str | None = None


@dataclass
class RicaRegistration:
    id: str
    msisdn: str
    identity: Identity
    full_name: str
    address: Address
    registered_at: datetime


class RicaRefused(Invalid):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__("rica-refused", detail, refusalReason=reason)


def check_sa_id(number: str) -> Identity:
    if not (number.isascii() and number.isdigit() and len(number) == 13):
        raise RicaRefused("id-number-format", "A South African ID number has 13 digits")
    try:
        birth_date = idnr.get_birth_date(number)
    except ValidationError:
        raise RicaRefused(
            "id-number-date-of-birth", "The ID number does not start with a valid date of birth"
        ) from None
    try:
        idnr.get_citizenship(number)
    except ValidationError:
        raise RicaRefused(
            "id-number-citizenship",
            "The ID number's 11th digit must be 0 (citizen) or 1 (resident)",
        ) from None
    if not idnr.is_valid(number):
        raise RicaRefused("id-number-checksum", "The ID number's check digit is wrong")
    return Identity(IdentityKind.SA_ID, number, "ZA", birth_date)


def check_passport(number: str, country: str | None) -> Identity:
    if not PASSPORT_NUMBER.fullmatch(number):
        raise RicaRefused(
            "passport-number-format", "A passport number has 6 to 12 capital letters and digits"
        )
    if not country:
        raise RicaRefused("passport-country-missing", "A passport needs its issuing country")
    found = (
        pycountry.countries.get(alpha_2=country)
        if len(country) == 2
        else pycountry.countries.get(alpha_3=country)
    )
    if found is None:
        raise RicaRefused(
            "passport-country-unknown", f"{country} is not an ISO 3166-1 country code"
        )
    return Identity(IdentityKind.PASSPORT, number, found.alpha_2)


def check_identity(
    *, id_number: str | None, passport_number: str | None, passport_country: str | None
) -> Identity:
    if id_number and passport_number:
        raise RicaRefused(
            "identity-ambiguous", "Give either a South African ID number or a passport, not both"
        )
    if id_number:
        return check_sa_id(id_number.replace(" ", ""))
    if passport_number:
        return check_passport(passport_number.strip().upper(), passport_country)
    raise RicaRefused(
        "identity-missing", "A South African ID number or a passport number is required"
    )


def check_full_name(full_name: str) -> str:
    names = full_name.split()
    if len(names) < 2:
        raise RicaRefused("full-name-incomplete", "The full name needs first name(s) and surname")
    return " ".join(names)


def check_address(address: Address) -> Address:
    if not address.line1.strip() or not address.city.strip():
        raise RicaRefused(
            "address-incomplete", "The residential address needs a street line and a city"
        )
    if not POSTAL_CODE.fullmatch(address.postal_code):
        raise RicaRefused("postal-code-invalid", "A South African postal code has 4 digits")
    return address


def register(
    rng: random.Random,
    *,
    msisdn: str,
    identity: Identity,
    full_name: str,
    address: Address,
    now: datetime,
) -> RicaRegistration:
    return RicaRegistration(
        id=new_id(rng),
        msisdn=msisdn,
        identity=identity,
        full_name=check_full_name(full_name),
        address=check_address(address),
        registered_at=now,
    )
