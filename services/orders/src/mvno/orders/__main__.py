"""``mvno-orders serve`` runs the API; ``mvno-orders migrate`` brings its database up to date."""

from collections.abc import Sequence
from pathlib import Path

from mvno.common.service import run_cli
from mvno.orders.consumer import HANDLERS
from mvno.orders.settings import OrdersSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SETTINGS = OrdersSettings


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(
        argv,
        service="orders",
        app_factory="mvno.orders.app:create_app",
        settings_factory=SETTINGS,
        migrations=MIGRATIONS,
        default_port=8002,
        consumer="orders",
        handlers=HANDLERS,
    )


if __name__ == "__main__":
    main()
