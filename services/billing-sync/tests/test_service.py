"""The billing-sync service boots as a real process on its own migrated database."""

from mvno.billing_sync.__main__ import MIGRATIONS
from mvno.devstack.testing import check_service_boots


async def test_boots_healthy_on_its_migrated_database(
    make_database, aws_endpoint_url, process_group
):
    await check_service_boots(
        "billing-sync",
        process_group,
        database_url=make_database("billing_sync"),
        aws_endpoint_url=aws_endpoint_url,
        migrations=MIGRATIONS,
    )
