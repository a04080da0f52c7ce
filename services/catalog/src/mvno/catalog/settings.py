from pydantic import Field

from mvno.common.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Settings of the catalog service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "catalog"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_catalog"
    read_cache_seconds: float = Field(default=5, ge=0, le=300)
    """How long a replica serves a rendered read without asking the database (0: never).

    Writes drop the cache at once on every replica; this bounds how late a ``validFor`` start
    or end shows, and how stale a read can be while the change listener reconnects.
    """
    client_cache_seconds: int = Field(default=5, ge=0, le=3600)
    """``Cache-Control: max-age`` for readers; they revalidate with ``If-None-Match`` after it."""
