"""Database plumbing against a real PostgreSQL: database creation, unit of work, migrations."""

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from mvno.common.db import (
    Statement,
    UnitOfWork,
    asyncpg_dsn,
    autocommit_connection,
    create_engine,
    ensure_database,
    unit_of_work_factory,
    upgrade,
)
from mvno.common.service import Infrastructure
from mvno.common.settings import ServiceSettings


@pytest.fixture
async def database_url(make_database):
    url = make_database("common")
    assert await ensure_database(url) is True
    return url


@pytest.fixture
async def engine(database_url):
    engine = create_engine(ServiceSettings(database_url=database_url))
    async with engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE note (id serial PRIMARY KEY, body text NOT NULL)")
        )
    yield engine
    await engine.dispose()


async def count_notes(engine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(text("SELECT count(*) FROM note"))).scalar_one()


async def test_ensure_database_creates_once(make_database):
    url = make_database("common")
    assert await ensure_database(url) is True
    assert await ensure_database(url) is False
    connection = await asyncpg.connect(asyncpg_dsn(url))
    assert (
        await connection.fetchval("SELECT current_database()")
        == url.rsplit("/", 1)[1].split("?")[0]
    )
    await connection.close()


async def test_unit_of_work_writes_on_commit(engine):
    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        await uow.session.execute(text("INSERT INTO note (body) VALUES ('kept')"))
        await uow.commit()
    assert await count_notes(engine) == 1


async def test_unit_of_work_without_commit_writes_nothing(engine):
    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        await uow.session.execute(text("INSERT INTO note (body) VALUES ('dropped')"))
    assert await count_notes(engine) == 0


async def place_note_then_fail(engine) -> None:
    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        await uow.session.execute(text("INSERT INTO note (body) VALUES ('half')"))
        raise ValueError("the handler failed after writing")


async def test_unit_of_work_rolls_back_when_the_handler_fails(engine):
    with pytest.raises(ValueError, match="after writing"):
        await place_note_then_fail(engine)
    assert await count_notes(engine) == 0


async def test_statements_on_the_driver_connection_commit_and_roll_back_with_the_unit_of_work(
    engine,
):
    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        driver = uow.connection
        assert driver.is_in_transaction()
        await driver.execute("INSERT INTO note (body) VALUES ('first, on the driver')")
        await uow.session.execute(text("INSERT INTO note (body) VALUES ('then the session')"))
        assert uow.connection is driver
    assert await count_notes(engine) == 0  # no commit: both rolled back

    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        await uow.session.execute(text("INSERT INTO note (body) VALUES ('the session first')"))
        await uow.connection.execute("INSERT INTO note (body) VALUES ('then the driver')")
        await uow.commit()
    assert await count_notes(engine) == 2


async def test_unit_of_work_commits_once(engine):
    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        await uow.commit()
        with pytest.raises(RuntimeError, match="once"):
            await uow.commit()


async def test_migrations_create_tables_and_record_the_revision(make_database, tmp_path: Path):
    url = make_database("migrated")
    await ensure_database(url)
    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "env.py").write_text(
        "from sqlalchemy import MetaData\n"
        "from mvno.common.migrations import run_migrations\n"
        "run_migrations(MetaData())\n"
    )
    (migrations / "versions" / "0001_first.py").write_text(
        "from alembic import op\n"
        "import sqlalchemy as sa\n"
        "revision = '0001'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade():\n    op.create_table('thing', sa.Column('id', sa.Integer, primary_key=True))\n"
        "def downgrade():\n    op.drop_table('thing')\n"
    )
    await asyncio.to_thread(upgrade, migrations, url)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == "0001"
        assert await connection.fetchval("SELECT to_regclass('public.thing')::text") == "thing"
    finally:
        await connection.close()


async def test_a_statement_binds_its_parameters_by_name(engine):
    statement = Statement(
        "SELECT :b::int AS b, :a::text AS a, :b::int + 1 AS c, '10:30'::text AS literal"
    )
    assert (
        statement.sql
        == "SELECT $1::int AS b, $2::text AS a, $1::int + 1 AS c, '10:30'::text AS literal"
    )
    assert statement.names == ("b", "a")
    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        row = await statement.fetchrow(uow.connection, a="x", b=41)
        assert row is not None
        assert (row["b"], row["a"], row["c"], row["literal"]) == (41, "x", 42, "10:30")
        with pytest.raises(TypeError, match=r"missing \['b'\], unknown \['z'\]"):
            await statement.fetchval(uow.connection, a="x", z=1)


class NotesUnitOfWork(UnitOfWork):
    """A service's own kind: its repositories are attributes."""

    async def count(self) -> int:
        return int(await self.connection.fetchval("SELECT count(*) FROM note"))


async def test_a_service_reaches_its_units_of_work_as_the_kind_it_built(engine):
    infrastructure = Infrastructure(
        settings=ServiceSettings(),
        engine=engine,
        unit_of_work=unit_of_work_factory(engine, source="urn:mvno:test", kind=NotesUnitOfWork),
        unit_of_work_kind=NotesUnitOfWork,
    )
    async with infrastructure.units_of_work(NotesUnitOfWork)() as uow:
        assert isinstance(uow, NotesUnitOfWork)
        assert await uow.count() == 0
    assert infrastructure.units_of_work(UnitOfWork) is infrastructure.unit_of_work

    class OtherUnitOfWork(UnitOfWork):
        pass

    with pytest.raises(TypeError, match="NotesUnitOfWork, not OtherUnitOfWork"):
        infrastructure.units_of_work(OtherUnitOfWork)


async def test_an_autocommit_connection_writes_each_statement_at_once(engine):
    async with autocommit_connection(engine) as (connection, driver):
        await driver.execute("INSERT INTO note (body) VALUES ('on the driver')")
        assert not driver.is_in_transaction()
        assert await count_notes(engine) == 1  # seen by another connection already
        await connection.execute(text("INSERT INTO note (body) VALUES ('through SQLAlchemy')"))
        assert await count_notes(engine) == 2


async def test_after_its_commit_a_unit_of_work_runs_nothing_more(engine):
    async with unit_of_work_factory(engine, source="urn:mvno:test")() as uow:
        await uow.session.execute(text("INSERT INTO note (body) VALUES ('committed')"))
        await uow.commit()
        with pytest.raises(RuntimeError, match="has committed"):
            await uow.connection.execute("INSERT INTO note (body) VALUES ('would commit alone')")
        with pytest.raises(RuntimeError, match="has committed"):
            await uow.session.execute(text("INSERT INTO note (body) VALUES ('nor this')"))
        # Its connection is back in the pool already: going on holds no second one.
        assert engine.sync_engine.pool.checkedout() == 0
    assert await count_notes(engine) == 1
