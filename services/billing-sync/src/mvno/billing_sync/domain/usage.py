"""Usage records: what a valid record is, and units. No I/O.

A usage file is CSV with a header line and one record per line::

    record_id,msisdn,usage_type,quantity,started_at
    r-000001,+27821234567,data,1048576,2026-11-28T10:15:00Z

``usage_type`` is ``data`` (quantity in bytes), ``voice`` (seconds) or ``sms`` (messages);
``started_at`` is ISO 8601 with a UTC offset. The network operator's usage API gives the same
fields (``id``, ``msisdn``, ``kind``, ``quantity``, ``startedAt``).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

HEADER = ("record_id", "msisdn", "usage_type", "quantity", "started_at")
USAGE_TYPES = frozenset({"data", "voice", "sms"})
MAX_QUANTITY = {"data": 10**12, "voice": 86_400, "sms": 1_000}
"""Largest believable quantity of one record of each kind: above it, a record is refused as
corrupt rather than charged."""
BYTES_PER_MB = Decimal(1_048_576)
SECONDS_PER_MINUTE = Decimal(60)

_RECORD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_MSISDN = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EARLIEST, _LATEST = 2000, 2100

UsageRow = tuple[str, str, str, int, datetime]
"""(record_id, msisdn, usage_type, quantity, started_at) of a valid record."""


class InvalidRecord(ValueError):
    """A record refused, with the reason quarantine keeps."""


def validate(fields: list[str]) -> UsageRow:
    """The record's values, or :class:`InvalidRecord` saying what is wrong with it."""
    if len(fields) != 5:
        raise InvalidRecord(f"expected 5 fields, found {len(fields)}")
    record_id, msisdn, usage_type, quantity_text, started_text = fields
    if not _RECORD_ID.match(record_id):
        raise InvalidRecord("record_id must be 1-64 letters, digits or ._:-")
    if not _MSISDN.match(msisdn):
        raise InvalidRecord("msisdn is not an E.164 number")
    if usage_type not in USAGE_TYPES:
        raise InvalidRecord("usage_type must be data, voice or sms")
    if not quantity_text.isdigit():
        raise InvalidRecord("quantity must be a whole number >= 0")
    quantity = int(quantity_text)
    if quantity > MAX_QUANTITY[usage_type]:
        raise InvalidRecord(f"quantity above {MAX_QUANTITY[usage_type]} for {usage_type}")
    try:
        started_at = datetime.fromisoformat(started_text)
    except ValueError:
        raise InvalidRecord("started_at is not an ISO 8601 timestamp") from None
    if started_at.tzinfo is None:
        raise InvalidRecord("started_at has no UTC offset")
    # Not "is it in the future": the network's clock (the simulators' moves on demand) is theirs.
    if not _EARLIEST <= started_at.year <= _LATEST:
        raise InvalidRecord("started_at is out of range")
    return record_id, msisdn, usage_type, quantity, started_at


def in_units(usage_type: str, quantity: int) -> Decimal:
    """A quantity in its bucket's units: bytes to MB, seconds to minutes, SMS as they are."""
    if usage_type == "data":
        return Decimal(quantity) / BYTES_PER_MB
    if usage_type == "voice":
        return Decimal(quantity) / SECONDS_PER_MINUTE
    return Decimal(quantity)
