"""``mvno-billing-sync serve`` runs the API; ``mvno-billing-sync migrate`` brings its database up to date."""

from collections.abc import Sequence
from pathlib import Path

from mvno.billing_sync.consumer import HANDLERS
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.common.service import run_cli

MIGRATIONS = Path(__file__).parent / "migrations"
SETTINGS = BillingSyncSettings


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(
        argv,
        service="billing-sync",
        app_factory="mvno.billing_sync.app:create_app",
        settings_factory=SETTINGS,
        migrations=MIGRATIONS,
        default_port=8003,
        consumer="billing-sync",
        handlers=HANDLERS,
    )


if __name__ == "__main__":
    main()
