from mvno.common.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    """Settings of the orders service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "orders"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_orders"
    personal_data_kms_key: str = "alias/mvno-orders-personal-data"
    """The KMS key (id, ARN or alias) whose data keys seal RICA details and eSIM codes."""
