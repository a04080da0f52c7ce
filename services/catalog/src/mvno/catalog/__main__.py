"""``mvno-catalog serve`` runs the API; ``migrate`` brings its database up to date; ``seed`` loads
the demo catalogue (never in production)."""

import logging
from collections.abc import Sequence
from pathlib import Path

from mvno.catalog.seed import seed
from mvno.catalog.settings import CatalogSettings
from mvno.catalog.statements import LAUNCHED_OFFERINGS
from mvno.common.service import run_cli
from mvno.common.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SETTINGS = CatalogSettings
LAUNCHED = LAUNCHED_OFFERINGS
"""The offerings on sale: the local platform is up once every service's ``CATALOGUE_COPY``
holds them all."""


async def SEED(settings: ServiceSettings) -> None:
    outcome = await seed(settings)
    logging.getLogger("mvno.catalog.seed").info(
        "demo catalogue: created %s, updated %s",
        {kind: len(ids) for kind, ids in outcome.created.items()} or "nothing",
        {kind: len(ids) for kind, ids in outcome.updated.items()} or "nothing",
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(
        argv,
        service="catalog",
        app_factory="mvno.catalog.app:create_app",
        settings_factory=SETTINGS,
        migrations=MIGRATIONS,
        default_port=8001,
        commands={"seed": ("load the South African demo catalogue (not in production)", SEED)},
    )


if __name__ == "__main__":
    main()
