"""The migrations every service shares: the baseline and bus revisions, and the revision template."""

import asyncio
from pathlib import Path

import asyncpg

from mvno.common.db import asyncpg_dsn, ensure_database, upgrade
from mvno.common.migrations import SHARED_VERSIONS, new_revision


def service_migrations(folder: Path) -> Path:
    """A folder shaped as a service's: its env.py and a first revision of its own revising 0002."""
    migrations = folder / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "env.py").write_text(
        "from sqlalchemy import MetaData\n"
        "from mvno.common.migrations import run_migrations\n"
        "run_migrations(MetaData())\n"
    )
    (migrations / "versions" / "0003_thing.py").write_text(
        "from alembic import op\n"
        "import sqlalchemy as sa\n"
        "revision = '0003'\ndown_revision = '0002'\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade():\n    op.create_table('thing', sa.Column('id', sa.Integer, primary_key=True))\n"
        "def downgrade():\n    op.drop_table('thing')\n"
    )
    return migrations


def test_the_shared_revisions_are_the_baseline_and_the_bus_tables():
    assert sorted(path.name for path in SHARED_VERSIONS.glob("*.py")) == [
        "0001_baseline.py",
        "0002_bus.py",
    ]


async def test_a_service_upgrades_through_the_shared_revisions_to_its_own(
    make_database, tmp_path: Path
):
    url = make_database("shared_revisions")
    await ensure_database(url)
    await asyncio.to_thread(upgrade, service_migrations(tmp_path), url)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == "0003"
        for table in ("outbox", "inbox", "thing"):
            assert await connection.fetchval(f"SELECT to_regclass('public.{table}')::text") == table
    finally:
        await connection.close()


def test_a_new_revision_follows_the_newest_from_the_shared_template(tmp_path: Path):
    migrations = service_migrations(tmp_path)
    path = new_revision(migrations, "add a column")
    assert path == migrations / "versions" / "0004_add_a_column.py"
    text = path.read_text()
    assert "revision: str = '0004'" in text
    assert "down_revision: str | None = '0003'" in text
    assert "def upgrade() -> None:" in text
