from mvno.common.settings import ServiceSettings


class PortalApiSettings(ServiceSettings):
    """Settings of the portal-api service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "portal-api"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_portal_api"
