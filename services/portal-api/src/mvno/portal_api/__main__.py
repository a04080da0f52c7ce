"""``mvno-portal-api serve`` runs the API; ``mvno-portal-api migrate`` brings its database up to date."""

from collections.abc import Sequence
from pathlib import Path

from mvno.common.service import run_cli
from mvno.portal_api.consumer import HANDLERS
from mvno.portal_api.repository import PortalUnitOfWork
from mvno.portal_api.settings import PortalApiSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SETTINGS = PortalApiSettings


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(
        argv,
        service="portal-api",
        app_factory="mvno.portal_api.app:create_app",
        settings_factory=SETTINGS,
        migrations=MIGRATIONS,
        default_port=8000,
        consumer="portal-api",
        handlers=HANDLERS,
        unit_of_work_kind=PortalUnitOfWork,
    )


if __name__ == "__main__":
    main()
