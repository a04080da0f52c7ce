"""The orders service boots as a real process on its own migrated database."""

from mvno.devstack.testing import check_service_boots
from mvno.orders.__main__ import MIGRATIONS


async def test_boots_healthy_on_its_migrated_database(
    make_database, aws_endpoint_url, process_group
):
    await check_service_boots(
        "orders",
        process_group,
        database_url=make_database("orders"),
        aws_endpoint_url=aws_endpoint_url,
        migrations=MIGRATIONS,
    )
