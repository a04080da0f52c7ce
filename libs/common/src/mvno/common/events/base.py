"""The base of every event contract, and the small value types the contracts share.

Type names
    Every concrete contract sets ``event_type`` to ``<producer>.<aggregate>.<action>.v<N>``, checked
    against :data:`EVENT_TYPE_PATTERN` when the class is created:

    * producer: the producing service's short name, lower case, hyphens allowed (``catalog``);
    * aggregate: what the event is about, lower case, underscores allowed (``subscription``);
    * action: what happened, lower case, underscores allowed, in the past tense
      (``activated``, ``tariff_changed``, ``topped_up``). A regular expression cannot tell a past
      tense, so that part is for review;
    * ``v<N>``: the contract's major version, from 1, without leading zeros. A breaking change
      makes a new version (a new class and a new type name); the old one stays until no consumer
      needs it.

    A subclass that sets no ``event_type`` of its own is an abstract base sharing fields between
    contracts; the registry refuses to register it.

Payload rules
    * Consumers ignore unknown fields (``extra="ignore"``), so producers may add fields at any time.
    * Payloads are frozen: a received event is a fact, not something to edit.
    * Ids are opaque strings; money is :class:`Money` (a decimal amount carried as a JSON string,
      so no float rounding, in ZAR); instants are timezone-aware.
    * When the fact happened is the CloudEvents ``time``; payloads carry only business instants that
      differ from it (validity, expiry, the period some usage covers).
    * No personal data, ever: see :data:`PERSONAL_DATA_MARKERS`, enforced at class creation.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, WithJsonSchema

EVENT_TYPE_PATTERN = re.compile(
    r"^(?P<producer>[a-z][a-z0-9-]*)"
    r"\.(?P<aggregate>[a-z][a-z0-9_]*)"
    r"\.(?P<action>[a-z][a-z0-9_]*)"
    r"\.v(?P<version>[1-9][0-9]*)$"
)
"""``<producer>.<aggregate>.<action>.v<N>``, e.g. ``orders.subscription.activated.v1``."""

PERSONAL_DATA_MARKERS: tuple[str, ...] = (
    "id_number",
    "idnumber",
    "national_id",
    "passport",
    "address",
    "date_of_birth",
    "birth",
    "dob",
    "first_name",
    "last_name",
    "surname",
    "full_name",
    "email",
)
"""Words that must not appear in any contract's field names (split on ``_``, or as a phrase).

Events travel in clear through SNS/SQS, land in DLQs and logs, and are kept by every consumer, so
they never carry personal data (ID/passport numbers, addresses, dates of birth, names, e-mail).
A customer is referred to by an opaque ``customer_id``; whoever needs more asks the owner's API.
"""


class EventTypeParts(NamedTuple):
    """The four parts of an event type name."""

    producer: str
    aggregate: str
    action: str
    version: int


def parse_event_type(event_type: str) -> EventTypeParts:
    """Split ``<producer>.<aggregate>.<action>.v<N>``; raise ``ValueError`` when malformed."""
    match = EVENT_TYPE_PATTERN.fullmatch(event_type)
    if match is None:
        raise ValueError(
            f"{event_type!r} is not an event type name: expected "
            "<producer>.<aggregate>.<past-tense-action>.v<N>, lower case, e.g. "
            "'orders.subscription.activated.v1'"
        )
    return EventTypeParts(
        match["producer"], match["aggregate"], match["action"], int(match["version"])
    )


def personal_data_markers_in(field_name: str) -> list[str]:
    """The :data:`PERSONAL_DATA_MARKERS` a field name contains (camelCase is read as snake_case)."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", field_name).lower()
    words = set(snake.split("_"))
    return [m for m in PERSONAL_DATA_MARKERS if m in words or ("_" in m and m in snake)]


class ContractModel(BaseModel):
    """Any model that is part of an event contract: an event payload or a value inside one."""

    # Attribute docstrings become field descriptions in the committed JSON Schemas.
    model_config = ConfigDict(extra="ignore", frozen=True, use_attribute_docstrings=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, field in cls.model_fields.items():
            for field_name in {name, field.alias or name, field.serialization_alias or name}:
                if markers := personal_data_markers_in(field_name):
                    raise TypeError(
                        f"{cls.__name__}.{field_name}: events never carry personal data "
                        f"({', '.join(markers)}); refer to the customer by an opaque id"
                    )


class EventData(ContractModel):
    """The payload (CloudEvents ``data``) of one event type.

    Subclasses set :attr:`event_type` and, optionally, :attr:`subject_field`.
    """

    event_type: ClassVar[str]
    """``<producer>.<aggregate>.<past-tense-action>.v<N>``; see :data:`EVENT_TYPE_PATTERN`."""

    subject_field: ClassVar[str | None] = None
    """The field whose value is the CloudEvents ``subject`` (the aggregate's id), if any."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            parse_event_type(cls.event_type)  # raises with the expected form
        if cls.subject_field is not None and cls.subject_field not in cls.model_fields:
            raise TypeError(
                f"{cls.__name__}.subject_field names {cls.subject_field!r}, which is not a field"
            )

    @classmethod
    def is_abstract(cls) -> bool:
        """True for a base that only shares fields: it sets no ``event_type`` of its own."""
        return "event_type" not in cls.__dict__

    def event_subject(self) -> str | None:
        """The CloudEvents ``subject`` for this event: the value of :attr:`subject_field`."""
        if self.subject_field is None:
            return None
        value = getattr(self, self.subject_field)
        return None if value is None else str(value)


# --- shared value types ------------------------------------------------------------------------

DecimalString = Annotated[
    Decimal,
    # On the wire a decimal is a JSON string ("149.00"), never a float. The format tells it apart
    # from free text in the schema, so a change between the two is seen as a retype.
    WithJsonSchema({"type": "string", "format": "decimal"}, mode="serialization"),
]
"""An exact decimal, serialised as a string with ``format: decimal``."""

Currency = Literal["ZAR"]
"""ISO 4217 codes the platform trades in (South African rand only, for now)."""

Channel = Literal["app", "web", "branch", "call_centre", "ussd", "partner"]
"""The bank channels an offering is sold on and an order comes from."""

SimKind = Literal["pSIM", "eSIM"]
"""A physical SIM card or an eSIM profile."""

PaymentType = Literal["prepaid", "postpaid"]
"""How a subscription is paid for."""


class Money(ContractModel):
    """An amount of money: exact decimal plus currency."""

    amount: DecimalString
    currency: Currency = "ZAR"


class Allowance(ContractModel):
    """What a bundle gives, per validity period; zero where it gives none of that kind."""

    data_mb: NonNegativeInt = 0
    voice_minutes: NonNegativeInt = 0
    sms: NonNegativeInt = 0
    validity_days: int = Field(ge=1)
