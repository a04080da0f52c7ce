from mvno.common.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    """Settings of the orders service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "orders"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_orders"
