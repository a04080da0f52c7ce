"""Number port-ins: a customer brings a number from another network.

At a real operator the request goes through the number portability clearing house to the donor
network, which accepts or refuses it; the number moves some time later, in a porting window.
Here a port-in completes ``delay`` after it was requested (at the first look after that), or at
once when the delay is zero. The donor refuses numbers ending in ``9999`` (a test rule, like the
bank's test accounts), so a refusal can be provoked. A completed port-in holds the number for
the platform as a reservation, so RICA and activation take it like any reserved number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

DONOR_REFUSES_SUFFIX = "9999"
DONOR_REFUSAL = "The donor network refused the port: the account holder's details do not match"


@dataclass
class PortInConfig:
    """How port-ins behave; the admin endpoint changes it at run time."""

    delay_seconds: float = 0.0


class PortInStatus(StrEnum):
    REQUESTED = "requested"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass
class PortIn:
    id: str
    msisdn: str
    status: PortInStatus
    requested_at: datetime
    completes_at: datetime
    completed_at: datetime | None = None
    reservation_id: str | None = None
    """The reservation holding the ported number, once completed."""
    rejection_reason: str | None = None

    def refused_by_donor(self) -> bool:
        return self.msisdn.endswith(DONOR_REFUSES_SUFFIX)
