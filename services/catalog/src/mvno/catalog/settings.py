from mvno.common.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Settings of the catalog service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "catalog"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_catalog"
