"""The simulators' clock: real UTC time plus an offset the admin endpoint can move forward.

Reservation expiry, usage accrual and billing periods all read this clock, so a test or a demo
can jump an hour or a month ahead instead of waiting for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        self.offset += timedelta(seconds=seconds)
        return self.now()
