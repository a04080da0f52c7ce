"""``mvno-billing-sync serve`` runs the API; ``migrate`` brings its database up to date;
``consume`` handles its events; ``work`` runs the background work; ``reconcile`` reconciles once."""

from collections.abc import Sequence
from pathlib import Path

from mvno.billing_sync.catalogue.statements import LAUNCHED_IN_COPY
from mvno.billing_sync.consumer import HANDLERS
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.service import run_cli
from mvno.common.settings import ServiceSettings

MIGRATIONS = Path(__file__).parent / "migrations"
SETTINGS = BillingSyncSettings
CATALOGUE_COPY = LAUNCHED_IN_COPY
"""The offerings its catalogue copy holds as launched: the local platform is up once it holds
every offering catalog has launched."""


async def LOCAL_SETUP(settings: ServiceSettings) -> None:
    """The local platform's stand-in for what Terraform creates in AWS: the usage-file bucket and
    its object-created notifications to billing-sync's usage-file queue."""
    from mvno.billing_sync.usage_files import ensure_usage_bucket

    assert isinstance(settings, BillingSyncSettings)
    if settings.is_production:
        raise RuntimeError("in production the bucket and its queue come from Terraform")
    await ensure_usage_bucket(settings)


async def _work(settings: ServiceSettings) -> None:
    from mvno.billing_sync import worker
    from mvno.common.tracing import configure_tracing

    assert isinstance(settings, BillingSyncSettings)
    configure_tracing(settings)
    await worker.run(settings)


async def _reconcile(settings: ServiceSettings) -> None:
    import json

    from mvno.billing_sync.reconcile import reconcile_once

    assert isinstance(settings, BillingSyncSettings)
    print(json.dumps(await reconcile_once(settings), indent=2))


WORKERS = ("work",)
"""Workers besides ``consume``, each its own process (and its own Deployment)."""


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
        unit_of_work_kind=BillingUnitOfWork,
        commands={
            "work": ("run the background worker until SIGTERM", _work),
            "reconcile": ("compare with the billing platform once, repair, report", _reconcile),
        },
    )


if __name__ == "__main__":
    main()
