from mvno.common.settings import ServiceSettings


class BillingSyncSettings(ServiceSettings):
    """Settings of the billing-sync service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "billing-sync"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_billing_sync"
