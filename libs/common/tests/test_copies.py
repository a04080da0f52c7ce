"""A copy kept from another service's events: not received while empty, within a bounded grace."""

import pytest

from mvno.common.copies import CopyNotReceived, CopyReadiness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def copy_with(rows: list[str], clock: Clock, grace: float = 60.0) -> CopyReadiness:
    async def holds_any() -> bool:
        return bool(rows)

    return CopyReadiness("catalogue", holds_any, grace_seconds=grace, clock=clock)


async def test_an_empty_copy_is_not_received_and_says_why():
    clock = Clock()
    copy = copy_with([], clock)
    assert not await copy.received()
    with pytest.raises(CopyNotReceived, match=r"catalogue copy is empty.* in 60 s"):
        await copy.check()


async def test_a_copy_is_received_once_it_holds_a_row_and_stays_so():
    clock, rows = Clock(), []
    copy = copy_with(rows, clock)
    assert not await copy.received()
    rows.append("starter-esim")
    assert await copy.received()
    rows.clear()  # once one row was seen, the copy is not read again
    assert await copy.received()
    await copy.check()


async def test_an_empty_copy_counts_as_an_empty_source_after_the_grace():
    clock = Clock()
    copy = copy_with([], clock, grace=60.0)
    clock.now += 59.0
    assert not await copy.received()
    clock.now += 1.0
    assert await copy.received()
    await copy.check()
