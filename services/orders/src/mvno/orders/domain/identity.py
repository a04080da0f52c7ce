"""Identity documents RICA accepts: a South African ID number, or a passport with its country."""

from __future__ import annotations

from datetime import date


class InvalidIdentity(ValueError):
    """The identity document is not well-formed."""


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def sa_id_birth_date(id_number: str, *, today: date) -> date:
    """The date of birth a South African ID number encodes; raises when the number is invalid.

    YYMMDD SSSS C A Z: birth date, sequence (gender), citizenship (0 citizen, 1 permanent
    resident), a digit no longer used, and a Luhn check digit over the first twelve.
    """
    if len(id_number) != 13 or not id_number.isdigit():
        raise InvalidIdentity("a South African ID number has 13 digits")
    if id_number[10] not in "01":
        raise InvalidIdentity("the citizenship digit of a South African ID number is 0 or 1")
    if not luhn_valid(id_number):
        raise InvalidIdentity("the check digit of the South African ID number does not match")
    year, month, day = int(id_number[0:2]), int(id_number[2:4]), int(id_number[4:6])
    century = 2000 if 2000 + year <= today.year else 1900
    try:
        born = date(century + year, month, day)
    except ValueError:
        raise InvalidIdentity(
            "the South African ID number does not hold a valid date of birth"
        ) from None
    return born


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
