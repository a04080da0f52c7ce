"""StatementPool: plain connections lent one at a time, on a real PostgreSQL: bounded, reused,
and a connection in an unknown state is never lent again."""

import asyncio
from collections.abc import AsyncIterator

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


# --- through an injected connect, one statement at a time (``fetch``) -------------------------


class Opened:
    """Connects to the test server and remembers every connection it opened."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.connections: list[asyncpg.Connection] = []

    async def __call__(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(self.dsn)
        self.connections.append(connection)
        return connection


@pytest.fixture
async def opened(postgres_server_url: str) -> AsyncIterator[Opened]:
    opened = Opened(asyncpg_dsn(postgres_server_url))
    yield opened
    for connection in opened.connections:
        if not connection.is_closed():
            await connection.close()


async def test_no_more_than_size_connections_and_waiters_get_them_in_turn(opened: Opened) -> None:
    pool = StatementPool(opened.dsn, connect=opened, size=2)
    answers = await asyncio.gather(
        *(pool.fetch("SELECT $1::int AS n, pg_sleep(0.05)", n) for n in range(8))
    )
    assert [rows[0]["n"] for rows in answers] == list(range(8))
    assert len(opened.connections) == 2
    await pool.fetch("SELECT 1")
    assert len(opened.connections) == 2  # reused, not opened anew
    await pool.close()
    assert all(connection.is_closed() for connection in opened.connections)
    with pytest.raises(asyncpg.InterfaceError):
        await pool.fetch("SELECT 1")


async def test_a_server_error_keeps_the_connection_a_cancelled_statement_does_not(
    opened: Opened,
) -> None:
    pool = StatementPool(opened.dsn, connect=opened, size=1)
    with pytest.raises(asyncpg.PostgresError):
        await pool.fetch("SELECT 1/0")
    assert (await pool.fetch("SELECT 2 AS n"))[0]["n"] == 2
    assert len(opened.connections) == 1
    # Cancelled mid-statement: the protocol's state is unknown, so that connection goes.
    slow = asyncio.create_task(pool.fetch("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert opened.connections[0].is_closed()
    assert (await pool.fetch("SELECT 3 AS n"))[0]["n"] == 3
    assert len(opened.connections) == 2
    await pool.close()


async def test_a_connection_closed_while_idle_is_replaced(opened: Opened) -> None:
    pool = StatementPool(opened.dsn, connect=opened, size=1)
    await pool.fetch("SELECT 1")
    backend = opened.connections[0].get_server_pid()
    async with asyncpg.create_pool(opened.dsn, min_size=1, max_size=1) as admin:
        await admin.execute("SELECT pg_terminate_backend($1)", backend)
    for _ in range(100):  # the server's goodbye reaches the idle connection
        if opened.connections[0].is_closed():
            break
        await asyncio.sleep(0.02)
    assert (await pool.fetch("SELECT 4 AS n"))[0]["n"] == 4  # not an error
    assert len(opened.connections) == 2
    await pool.close()


async def test_a_waiter_gets_a_place_when_a_connection_is_dropped(opened: Opened) -> None:
    pool = StatementPool(opened.dsn, connect=opened, size=1)
    slow = asyncio.create_task(pool.fetch("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    waiting = asyncio.create_task(pool.fetch("SELECT 5 AS n"))
    await asyncio.sleep(0.05)
    slow.cancel()  # its connection is terminated; the waiter opens one in its place
    rows = await asyncio.wait_for(waiting, 5)
    assert rows[0]["n"] == 5
    await pool.close()


async def test_when_the_server_refuses_more_connections_views_wait_for_those_open(
    opened: Opened,
) -> None:
    refusals = 0
    asked = 0

    async def one_then_refused() -> asyncpg.Connection:
        nonlocal asked, refusals
        asked += 1
        if asked > 1:
            refusals += 1
            # What PostgreSQL answers at max_connections (the real refusal is in the next test).
            raise asyncpg.TooManyConnectionsError("sorry, too many clients already")
        return await opened()

    pool = StatementPool(opened.dsn, connect=one_then_refused, size=4)
    answers = await asyncio.gather(
        *(pool.fetch("SELECT $1::int AS n, pg_sleep(0.02)", n) for n in range(6))
    )
    assert [rows[0]["n"] for rows in answers] == list(range(6))  # none failed
    assert len(opened.connections) == 1
    # Refused once, then the server was left alone: the other views waited for the one open.
    assert refusals == 1
    await pool.fetch("SELECT 1")
    assert refusals == 1
    await pool.close()


async def test_with_no_connection_open_a_refusal_is_the_callers_error(opened: Opened) -> None:
    async def refused() -> asyncpg.Connection:
        return await asyncpg.connect(opened.dsn.rsplit("/", 1)[0] + "/no_such_database")

    pool = StatementPool(opened.dsn, connect=refused, size=2)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await pool.fetch("SELECT 1")
    await pool.close()
