"""Database plumbing: the async engine, a unit of work that commits once, migrations.

Each service owns its own database; outside production a missing database is created on start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import asyncpg
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mvno.common.bus.envelope import OutgoingEvent, new_event
from mvno.common.settings import ServiceSettings

if TYPE_CHECKING:
    from alembic.config import Config

_log = logging.getLogger(__name__)

# Plain SQL, compiled once: the ORM's bulk ``insert(outbox)`` path cost about a third more CPU per
# committed event, on the path of every request that publishes (measured for bench/bus.py).
_WRITE_OUTBOX_ROWS = """
INSERT INTO outbox (event_id, event_type, body, attributes)
SELECT e.event_id, e.event_type, e.body, e.attributes::jsonb
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
       AS e(event_id, event_type, body, attributes)
"""


def outbox_recordset(parameter: str) -> str:
    """:data:`OUTBOX_RECORDSET` reading its rows from ``parameter`` (``$3`` in SQL sent to asyncpg
    itself, say)."""
    return (
        f"jsonb_to_recordset(CAST({parameter} AS jsonb)) "
        "AS outbox_row(event_id text, event_type text, body text, attributes jsonb)"
    )


OUTBOX_RECORDSET = outbox_recordset(":outbox")
"""The rows of :func:`outbox_json` (bound as ``:outbox``) for a statement that writes its events
itself: ``INSERT INTO outbox (event_id, event_type, body, attributes) SELECT outbox_row.* FROM
<its own rows>, OUTBOX_RECORDSET``. A hot path that makes its whole change in one statement (no
transaction to begin and commit) writes its events in that statement, as atomic as a unit of work.
"""


def json_text(value: Any) -> str:
    """``value`` as JSON text for a ``json``/``jsonb`` parameter of a hand-written statement,
    written by pydantic's serializer (a third of ``json.dumps``'s cost; datetimes in ISO 8601,
    anything else it cannot write as ``str``)."""
    return to_json(value, fallback=str).decode()


def outbox_json(events: Sequence[OutgoingEvent]) -> str:
    """``events`` as the JSON :data:`OUTBOX_RECORDSET` reads."""
    return json_text(
        [
            {"event_id": e.id, "event_type": e.type, "body": e.body, "attributes": e.attributes}
            for e in events
        ]
    )


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """An asyncpg-backed engine sized by the settings."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_overflow,
        # No pre-ping: it costs a round trip on every checkout (measured in bench/run.py). A
        # connection lost to a database restart fails one statement, SQLAlchemy then invalidates
        # the pool and the next unit of work reconnects.
        pool_recycle=1800,
    )


def asyncpg_dsn(database_url: str) -> str:
    """The same URL without SQLAlchemy's ``+asyncpg`` driver suffix, as asyncpg wants it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(database_url: str) -> bool:
    """Create the URL's database on its server if it is missing. Returns True when created."""
    url = make_url(database_url)
    name = url.database
    if not name:
        raise ValueError("the database URL names no database")
    admin_dsn = asyncpg_dsn(url.set(database="postgres").render_as_string(hide_password=False))
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await connection.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False  # another process created it between our check and our CREATE
        _log.info("created database %s", name)
        return True
    finally:
        await connection.close()


async def open_statement_pool(dsn: str, *, size: int) -> asyncpg.Pool:
    """A plain asyncpg pool (``dsn`` as :func:`asyncpg_dsn` gives it) for a hot path whose every
    use is a single statement, its own transaction.

    Without SQLAlchemy's cost per statement and per checkout, and without its overflow: the
    connections made under load are kept (an engine's overflow connections are closed on return
    and made again, a quarter of the order intake's database time under wrk). Nothing is reset
    on release, as a lone statement leaves no session state behind (asyncpg's default reset is a
    round trip on every release); a transaction left open is still rolled back by the pool.
    ``json``/``jsonb`` travel as text both ways (asyncpg's default).
    """

    async def keep_session(_connection: asyncpg.Connection) -> None:
        return None

    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, reset=keep_session
    )
    return pool


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def driver_connection(session: AsyncSession | AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, inside its transaction.

    For hot paths that send hand-written SQL without SQLAlchemy's cost per statement (measured
    in the provisioning worker: a statement through the session costs several times what it
    costs on asyncpg). What runs here commits or rolls back with the session, as its own
    statements do.
    """
    connection = await session.connection() if isinstance(session, AsyncSession) else session
    raw = await connection.get_raw_connection()
    adapter = raw.dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN with the first statement it runs itself; start
    # the transaction now so that statements sent past it are not autocommitted.
    if not adapter._started:  # type: ignore[union-attr]
        await adapter._start_transaction()  # type: ignore[union-attr]
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    return driver


class UnitOfWork:
    """One business transaction: use it as ``async with uow: ...; await uow.commit()``.

    Nothing is written unless ``commit()`` is called; leaving the block without it, or with an
    exception, rolls everything back, so a failed request never leaves half-written state.
    Events given to :meth:`publish` are written to the outbox in that same commit, never apart
    from the business change they announce.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, source: str) -> None:
        self._session_factory = session_factory
        self._source = source
        self._session: AsyncSession | None = None
        self._committed = False
        self._events: list[OutgoingEvent] = []

    def publish(
        self, data: BaseModel, *, subject: str | None = None, event_id: str | None = None
    ) -> OutgoingEvent:
        """Stage an event for the outbox; it is written by :meth:`commit` with the business change.

        Raises :class:`~mvno.common.bus.envelope.EventTooLargeError` at once when the bus would
        refuse the event.
        """
        event = new_event(data, source=self._source, subject=subject, event_id=event_id)
        self._events.append(event)
        return event

    @property
    def committed(self) -> bool:
        """Whether :meth:`commit` ran (a handler may commit early to go on in new transactions)."""
        return self._committed

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use it in 'async with'")
        return self._session

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work is opened once")
        self._session = self._session_factory()
        await self._session.begin()
        return self

    async def commit(self) -> None:
        if self._committed:
            raise RuntimeError("a unit of work commits once")
        if self._events:
            # One statement for every event, on the driver: through the session, the insert cost
            # several times as much CPU (a step of the provisioning saga commits events each time).
            driver = await driver_connection(self.session)
            await driver.execute(
                _WRITE_OUTBOX_ROWS,
                [e.id for e in self._events],
                [e.type for e in self._events],
                [e.body for e in self._events],
                [json_text(e.attributes) for e in self._events],
            )
        await self.session.commit()
        self._committed = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            if not self._committed:
                await session.rollback()
        finally:
            await session.close()
            self._session = None


def unit_of_work_factory(engine: AsyncEngine, *, source: str) -> Callable[[], UnitOfWork]:
    """A callable that opens a new :class:`UnitOfWork` on ``engine`` each time.

    ``source`` is the CloudEvents source of the events it publishes, e.g. ``urn:mvno:orders``.
    """
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return lambda: UnitOfWork(sessions, source=source)


def alembic_config(migrations: Path, database_url: str) -> Config:
    """An Alembic configuration for a service's migrations folder, with no ini file needed."""
    # Imported here: only migrations need Alembic, and it is a third of a service's start-up.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(migrations: Path, database_url: str, revision: str = "head") -> None:
    """Run a service's migrations up to ``revision`` (blocking; call it from a thread in async code)."""
    from alembic import command

    command.upgrade(alembic_config(migrations, database_url), revision)


# Constraint names Alembic can rely on in every service's migrations.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
