"""``mvno-catalog serve`` runs the API; ``mvno-catalog migrate`` brings its database up to date."""

from collections.abc import Sequence
from pathlib import Path

from mvno.catalog.settings import CatalogSettings
from mvno.common.service import run_cli

MIGRATIONS = Path(__file__).parent / "migrations"
SETTINGS = CatalogSettings


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(
        argv,
        service="catalog",
        app_factory="mvno.catalog.app:create_app",
        settings_factory=SETTINGS,
        migrations=MIGRATIONS,
        default_port=8001,
    )


if __name__ == "__main__":
    main()
