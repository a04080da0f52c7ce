"""Whether a copy a service keeps from another service's events has received them yet."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from mvno.common.health import NotReady


class CopyNotReceived(NotReady):
    """The copy is empty and may still be waiting for its first events."""


class CopyReadiness:
    """Tells a copy that has not yet received its source's events from one that has.

    On a fresh database the copy is empty until the first events arrive; until then an answer
    read from it would be wrong (an offering "does not exist"), so the service reports itself not
    ready and refuses such work as retryable. An empty copy is told apart from an empty source
    by time: it counts as not yet received for at most ``grace_seconds`` after the process
    started, and as a source with nothing in it afterwards, so a source that is really empty
    never keeps every replica out of rotation for longer than that. Once the copy has held a row
    it stays received for the life of the process.
    """

    def __init__(
        self,
        what: str,
        holds_any: Callable[[], Awaitable[bool]],
        *,
        grace_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what = what
        self._holds_any = holds_any
        self._clock = clock
        self._until = clock() + grace_seconds
        self._received = False

    async def received(self) -> bool:
        """Whether answers read from the copy can be trusted: it holds a row, or the grace is
        over and its source is taken to be empty."""
        if not self._received:
            self._received = await self._holds_any()
        return self._received or self._clock() >= self._until

    async def check(self) -> None:
        """A readiness check: raises :class:`CopyNotReceived` with the reason while the copy is
        empty and inside its grace."""
        if not await self.received():
            left = max(0.0, self._until - self._clock())
            raise CopyNotReceived(
                f"the {self._what} copy is empty: its events have not arrived yet "
                f"(an empty copy is taken as an empty source in {left:.0f} s)"
            )
