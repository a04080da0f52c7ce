"""What every service's Alembic migrations share.

``run_migrations`` is the body of each service's ``env.py`` (async migrations on the service's own
engine); ``SHARED_VERSIONS`` holds the revisions every service starts with (0001 the baseline,
0002 the bus's outbox and inbox), which ``mvno.common.db.alembic_config`` lists beside the
service's own ``versions/``; ``new_revision`` writes a service's next revision from the one
template, ``script.py.mako`` beside this module::

    .venv/bin/python -m mvno.common.migrations services/orders/src/mvno/orders/migrations "what it does"
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
# Alembic reads a revision's template from its script location: this folder, for new revisions.
_TEMPLATE_LOCATION = Path(__file__).parent


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


def new_revision(migrations: Path, message: str) -> Path:
    """Write the next revision of a service's migrations folder and return its path.

    It goes into ``migrations/versions/`` as ``<id>_<message as a slug>.py``, its id the newest
    revision's plus one (``"0009"`` after ``"0008"``), revising that one, from ``script.py.mako``.
    """
    from alembic import command
    from alembic.script import Script, ScriptDirectory

    from mvno.common.db import alembic_config

    # The service's own configuration (its version locations), with this folder's template.
    config = alembic_config(migrations, "postgresql://unused")
    config.set_main_option("script_location", str(_TEMPLATE_LOCATION))
    head = ScriptDirectory.from_config(config).get_current_head()
    revision_id = f"{int(head) + 1 if head else 1:04d}"
    script = command.revision(
        config, message, rev_id=revision_id, version_path=str(migrations / "versions")
    )
    if not isinstance(script, Script):  # a list only for several heads, which revise nothing here
        raise RuntimeError(f"no single new revision in {migrations}: {script!r}")
    return Path(script.path)
