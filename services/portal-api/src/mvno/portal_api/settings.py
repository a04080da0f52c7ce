from typing import Self

from pydantic import Field, SecretStr, model_validator

from mvno.common.settings import InsecureSettingsError, ServiceSettings


class PortalApiSettings(ServiceSettings):
    """Settings of the portal-api service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "portal-api"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_portal_api"

    # --- upstreams -----------------------------------------------------------------------------
    orders_url: str = "http://127.0.0.1:8002"
    catalog_url: str = "http://127.0.0.1:8001"
    billing_sync_url: str = "http://127.0.0.1:8003"
    channel: str = "app"
    """The sales channel orders placed through the portal are booked on."""
    upstream_timeout_seconds: float = Field(default=0.5, gt=0, le=30)
    """Whole-call deadline of a read from an upstream on a customer's screen: past it the screen
    answers with what it has (a last-known copy, marked stale) rather than wait."""
    upstream_cool_off_seconds: float = Field(default=5.0, ge=0, le=300)
    """After a failed or late read, how long screens leave that upstream alone and show copies."""
    order_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """Deadline of placing an order with orders (a retry carries the same Idempotency-Key)."""
    balance_fresh_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long a copy of a line's balances is shown without asking billing-sync again; an event
    about that line's balance or usage drops the copy at once."""
    lines_answers_kept: int = Field(default=10_000, ge=0, le=1_000_000)
    """How many customers' rendered "my lines" answers a replica keeps (least recently viewed go
    first; 0 keeps none). Each is dropped when the consumer announces a change to that customer's
    lines, balances or orders, and kept no longer than its balances stay fresh."""
    catalogue_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    """How long the offers on sale are kept; a catalog event drops them at once."""

    # --- service-to-service tokens (OAuth 2.0 client credentials) ----------------------------
    token_url: str | None = None
    """The identity provider's OAuth 2.0 token endpoint; by default ``{MVNO_JWT_ISSUER}/token``."""
    client_id: str = "portal-api"
    client_secret: SecretStr = SecretStr("dev")
    """Never in the repository: the deployment injects it from its secret store."""
    client_scopes: str = "orders:write orders:read inventory:read inventory:secrets billing:read"

    # --- customers -----------------------------------------------------------------------------
    customer_scope: str = "portal"
    """The scope the bank's identity provider grants customers' portal tokens."""
    demo_login_enabled: bool = True
    """DEVELOPMENT ONLY: the web portal's demo sign-in, which asks the development token issuer
    for a customer's token. Refused in production."""

    # --- protection ------------------------------------------------------------------------------
    rate_limit_per_customer: str = "120/minute"
    rate_limit_per_ip: str = "600/minute"
    rate_limit_orders_per_customer: str = "10/minute"
    hsts_seconds: int = Field(default=63_072_000, ge=0)

    @property
    def token_endpoint(self) -> str:
        return self.token_url or self.jwt_issuer.rstrip("/") + "/token"

    @model_validator(mode="after")
    def _refuse_demo_login_in_production(self) -> Self:
        if self.is_production and self.demo_login_enabled:
            raise InsecureSettingsError(
                "refusing production settings: MVNO_DEMO_LOGIN_ENABLED must be false in production"
            )
        return self
