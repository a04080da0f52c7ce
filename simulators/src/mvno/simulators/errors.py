"""Refusals the simulated partners give, without any HTTP in them.

The partners' domain modules raise these; :mod:`mvno.simulators.problems` turns them into
problem+json answers in one place, so a replayed idempotent call answers exactly as the first did.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PartnerError(Exception):
    """A partner refuses a call; ``slug`` is the stable problem type a client branches on."""

    status: ClassVar[int] = 422

    def __init__(self, slug: str, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.extensions = extensions


class NotFound(PartnerError):
    status = 404


class Conflict(PartnerError):
    """The resource is in a state that does not allow the call (e.g. capturing a voided payment)."""

    status = 409


class Invalid(PartnerError):
    """The request is well-formed but its content is refused (a bad ID number checksum, say)."""

    status = 422


class Declined(PartnerError):
    """The bank declines a payment (insufficient funds, blocked account)."""

    status = 402
