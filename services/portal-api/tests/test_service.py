"""The portal-api service boots as a real process on its own migrated database."""

from mvno.devstack.testing import check_service_boots
from mvno.portal_api.__main__ import MIGRATIONS


async def test_boots_healthy_on_its_migrated_database(
    make_database, aws_endpoint_url, process_group
):
    await check_service_boots(
        "portal-api",
        process_group,
        database_url=make_database("portal_api"),
        aws_endpoint_url=aws_endpoint_url,
        migrations=MIGRATIONS,
    )
