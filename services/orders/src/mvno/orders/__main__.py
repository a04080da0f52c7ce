"""``mvno-orders serve`` runs the API; ``mvno-orders migrate`` brings its database up to date."""

from collections.abc import Sequence
from pathlib import Path

from mvno.common.aws import aws_client
from mvno.common.crypto import ensure_kms_alias
from mvno.common.service import run_cli
from mvno.common.settings import ServiceSettings
from mvno.orders.catalogue.statements import LAUNCHED_IN_COPY
from mvno.orders.consumer import HANDLERS
from mvno.orders.settings import OrdersSettings
from mvno.orders.unit_of_work import OrdersUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"
SETTINGS = OrdersSettings


async def LOCAL_SETUP(settings: ServiceSettings) -> None:
    """The local platform's stand-in for the KMS key Terraform creates in AWS."""
    assert isinstance(settings, OrdersSettings)
    if settings.is_production:
        raise RuntimeError("in production the KMS key comes from Terraform")
    async with aws_client(settings, "kms") as kms:
        await ensure_kms_alias(kms, settings.personal_data_kms_key, "orders: personal data")


async def _provision(settings: ServiceSettings) -> None:
    from mvno.common.logs import configure_logging
    from mvno.common.tracing import configure_tracing
    from mvno.orders.provisioning import worker

    assert isinstance(settings, OrdersSettings)
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(settings)
    await worker.run(settings)


CATALOGUE_COPY = LAUNCHED_IN_COPY
"""The offerings its catalogue copy holds as launched: the local platform is up once it holds
every offering catalog has launched."""

WORKERS = ("provision",)
"""Queue workers besides ``consume``, each its own process (and its own Deployment)."""


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
        unit_of_work_kind=OrdersUnitOfWork,
        commands={"provision": ("run a provisioning worker until SIGTERM", _provision)},
    )


if __name__ == "__main__":
    main()
