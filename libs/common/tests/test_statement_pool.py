"""StatementPool: plain connections lent one at a time, on a real PostgreSQL."""

import asyncio

import asyncpg
import pytest

from mvno.common.db import StatementPool, asyncpg_dsn, ensure_database


@pytest.fixture
async def dsn(make_database):
    url = make_database("statements")
    await ensure_database(url)
    return asyncpg_dsn(url)


async def _backend(connection) -> int:
    return await connection.fetchval("SELECT pg_backend_pid()")


async def test_a_connection_is_lent_again_after_a_statement(dsn):
    pool = await StatementPool.open(dsn, size=2)
    try:
        async with pool.acquire() as connection:
            first = await _backend(connection)
        async with pool.acquire() as connection:
            assert await _backend(connection) == first
        assert pool.idle == 1
    finally:
        await pool.close()


async def test_no_more_than_size_are_lent_and_waiters_are_served_in_turn(dsn):
    pool = await StatementPool.open(dsn, size=2)
    lent, most = 0, 0

    async def use(n: int) -> int:
        nonlocal lent, most
        async with pool.acquire() as connection:
            lent += 1
            most = max(most, lent)
            await connection.execute("SELECT pg_sleep(0.02)")
            lent -= 1
            return n

    try:
        assert await asyncio.gather(*(use(n) for n in range(10))) == list(range(10))
        assert most == 2
        assert pool.idle == 2
    finally:
        await pool.close()


async def test_a_cancelled_waiter_does_not_keep_the_connection_from_the_next(dsn):
    pool = await StatementPool.open(dsn, size=1)
    try:
        async with pool.acquire():
            cancelled = asyncio.create_task(pool.acquire().__aenter__())
            served = asyncio.create_task(_borrow_and_ask(pool))
            await asyncio.sleep(0.05)
            cancelled.cancel()
        # The connection given back goes to the waiter still there, not to the cancelled one.
        assert await asyncio.wait_for(served, 5) > 0
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    finally:
        await pool.close()


async def _borrow_and_ask(pool: StatementPool) -> int:
    async with pool.acquire() as connection:
        return await _backend(connection)


async def test_a_statement_interrupted_midway_closes_its_connection_and_another_is_made(dsn):
    pool = await StatementPool.open(dsn, size=1)
    try:
        async with pool.acquire() as connection:
            first = await _backend(connection)

        async def slow() -> None:
            async with pool.acquire() as connection:
                await connection.execute("SELECT pg_sleep(10)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.idle == 0
        async with pool.acquire() as connection:
            assert await _backend(connection) != first
    finally:
        await pool.close()


async def test_a_refused_statement_keeps_its_connection_but_an_open_transaction_does_not(dsn):
    pool = await StatementPool.open(dsn, size=1)
    try:
        async with pool.acquire() as connection:
            first = await _backend(connection)
        with pytest.raises(asyncpg.UndefinedTableError):
            async with pool.acquire() as connection:
                await connection.execute("SELECT * FROM no_such_table")
        async with pool.acquire() as connection:
            assert await _backend(connection) == first
            await connection.execute("BEGIN")
        async with pool.acquire() as connection:
            assert not connection.is_in_transaction()
            assert await _backend(connection) != first
    finally:
        await pool.close()


async def test_a_closed_pool_lends_nothing_and_closes_what_comes_back(dsn):
    pool = await StatementPool.open(dsn, size=2)
    async with pool.acquire() as connection:
        await pool.close()
        assert pool.idle == 0
    assert connection.is_closed()
    with pytest.raises(asyncpg.InterfaceError):
        async with pool.acquire():
            pass


async def test_a_waiter_cancelled_as_it_is_woken_passes_the_connection_on(dsn):
    pool = await StatementPool.open(dsn, size=1)
    try:
        async with pool.acquire():
            woken = asyncio.create_task(_borrow_and_ask(pool))
            next_in_line = asyncio.create_task(_borrow_and_ask(pool))
            await asyncio.sleep(0.05)
        woken.cancel()  # after the connection came back and woke it, before it ran
        with pytest.raises(asyncio.CancelledError):
            await woken
        assert await asyncio.wait_for(next_in_line, 5) > 0
    finally:
        await pool.close()
