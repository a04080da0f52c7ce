"""The hottest read's connections (``ReadConnections``) against a real PostgreSQL: bounded, reused,
and a connection in an unknown state is never lent again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from mvno.common.db import asyncpg_dsn
from mvno.portal_api.repository import ReadConnections


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
    connections = ReadConnections(opened, size=2)
    answers = await asyncio.gather(
        *(connections.fetch("SELECT $1::int AS n, pg_sleep(0.05)", n) for n in range(8))
    )
    assert [rows[0]["n"] for rows in answers] == list(range(8))
    assert len(opened.connections) == 2
    await connections.fetch("SELECT 1")
    assert len(opened.connections) == 2  # reused, not opened anew
    await connections.close()
    assert all(connection.is_closed() for connection in opened.connections)
    with pytest.raises(asyncpg.InterfaceError):
        await connections.fetch("SELECT 1")


async def test_a_server_error_keeps_the_connection_a_cancelled_statement_does_not(
    opened: Opened,
) -> None:
    connections = ReadConnections(opened, size=1)
    with pytest.raises(asyncpg.PostgresError):
        await connections.fetch("SELECT 1/0")
    assert (await connections.fetch("SELECT 2 AS n"))[0]["n"] == 2
    assert len(opened.connections) == 1
    # Cancelled mid-statement: the protocol's state is unknown, so that connection goes.
    slow = asyncio.create_task(connections.fetch("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert opened.connections[0].is_closed()
    assert (await connections.fetch("SELECT 3 AS n"))[0]["n"] == 3
    assert len(opened.connections) == 2
    await connections.close()


async def test_a_connection_closed_while_idle_is_replaced(opened: Opened) -> None:
    connections = ReadConnections(opened, size=1)
    await connections.fetch("SELECT 1")
    backend = opened.connections[0].get_server_pid()
    async with asyncpg.create_pool(opened.dsn, min_size=1, max_size=1) as admin:
        await admin.execute("SELECT pg_terminate_backend($1)", backend)
    for _ in range(100):  # the server's goodbye reaches the idle connection
        if opened.connections[0].is_closed():
            break
        await asyncio.sleep(0.02)
    assert (await connections.fetch("SELECT 4 AS n"))[0]["n"] == 4  # not an error
    assert len(opened.connections) == 2
    await connections.close()


async def test_a_waiter_gets_a_place_when_a_connection_is_dropped(opened: Opened) -> None:
    connections = ReadConnections(opened, size=1)
    slow = asyncio.create_task(connections.fetch("SELECT pg_sleep(5)"))
    await asyncio.sleep(0.2)
    waiting = asyncio.create_task(connections.fetch("SELECT 5 AS n"))
    await asyncio.sleep(0.05)
    slow.cancel()  # its connection is terminated; the waiter opens one in its place
    rows = await asyncio.wait_for(waiting, 5)
    assert rows[0]["n"] == 5
    await connections.close()


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

    connections = ReadConnections(one_then_refused, size=4)
    answers = await asyncio.gather(
        *(connections.fetch("SELECT $1::int AS n, pg_sleep(0.02)", n) for n in range(6))
    )
    assert [rows[0]["n"] for rows in answers] == list(range(6))  # none failed
    assert len(opened.connections) == 1
    # Refused once, then the server was left alone: the other views waited for the one open.
    assert refusals == 1
    await connections.fetch("SELECT 1")
    assert refusals == 1
    await connections.close()


async def test_with_no_connection_open_a_refusal_is_the_callers_error(opened: Opened) -> None:
    async def refused() -> asyncpg.Connection:
        return await asyncpg.connect(opened.dsn.rsplit("/", 1)[0] + "/no_such_database")

    connections = ReadConnections(refused, size=2)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await connections.fetch("SELECT 1")
    await connections.close()
