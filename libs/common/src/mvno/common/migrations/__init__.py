"""What every service's Alembic migrations share.

``run_migrations`` is the body of each service's ``env.py`` (async migrations on the service's own
engine); ``SHARED_VERSIONS`` holds the revisions every service starts with (0001 the baseline,
0002 the bus's outbox and inbox), which ``mvno.common.db.alembic_config`` lists beside the
service's own ``versions/``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from mvno.common.bus.tables import BUS_TABLES

SHARED_VERSIONS = Path(__file__).parent / "versions"


def _not_bus_table(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # The outbox and inbox come from the shared revision 0002, not from a service's metadata.
    return not (type_ == "table" and name in BUS_TABLES)


def _run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        include_object=_not_bus_table,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run, metadata)
    finally:
        await engine.dispose()


def run_migrations(metadata: MetaData) -> None:
    """Call from a service's ``env.py`` with its tables' metadata."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set on the Alembic configuration")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, metadata))
