"""The portal-api service boots as a real process on its own migrated database."""

import asyncpg

from mvno.common.db import asyncpg_dsn
from mvno.devstack.testing import running_service
from mvno.portal_api.__main__ import MIGRATIONS


async def test_boots_healthy_with_migrated_database_and_openapi(
    make_database, aws_endpoint_url, process_group
):
    database_url = make_database("portal_api")
    with running_service(
        "portal-api", process_group, database_url=database_url, aws_endpoint_url=aws_endpoint_url
    ) as api:
        assert api.get("/health/live").json() == {"status": "live"}
        assert api.get("/health/ready").json()["checks"] == {"database": "ok", "bus": "ok"}
        openapi = api.get("/openapi.json").json()
        missing = api.get("/no/such/route")
    assert openapi["info"]["version"] == "0.1.0"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    newest = sorted(path.name for path in (MIGRATIONS / "versions").glob("*.py"))[-1].split("_")[0]
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == newest
    finally:
        await connection.close()
