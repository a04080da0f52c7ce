"""The canary's one ``Settings`` (``MVNO_*``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from mvno.common.settings import ServiceSettings


class CanarySettings(ServiceSettings):
    """Settings of the canary (environment variables prefixed ``MVNO_``)."""

    service_name: str = "canary"

    canary_interval_seconds: float = Field(default=60.0, gt=0, le=3600)
    """How often every probe runs; an outage is reported within one interval."""
    canary_probes: tuple[str, ...] = ()
    """The probes to run, by name (``payments.authorise_void``) or target (``payments``);
    empty runs every probe."""
    canary_latency_threshold_seconds: float = Field(default=2.0, gt=0, le=60)
    """A probe slower than this fails: customers would already be waiting."""
    canary_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """A probe's whole deadline; past it the probe fails as a timeout."""

    # --- what is probed: the same endpoints the services call ---------------------------------
    network_operator_url: str = "http://127.0.0.1:8010/mno/v1"
    payments_url: str = "http://127.0.0.1:8010/payments/v1"
    billing_platform_url: str = "http://127.0.0.1:8010/billing/v1"
    portal_api_url: str = "http://127.0.0.1:8000"

    canary_payment_account: str = Field(default="4000000099", pattern=r"^[0-9]{6,16}$")
    """The bank's test account the harmless authorise-and-void runs against."""
    canary_payment_cents: int = Field(default=100, gt=0, le=10_000)

    # --- the canary's customer identity (OAuth 2.0 client credentials) ----------------------
    token_url: str | None = None
    """The identity provider's token endpoint; by default ``{MVNO_JWT_ISSUER}/token``."""
    canary_client_id: str = "mvno-canary"
    canary_client_secret: SecretStr = SecretStr("dev")
    """Never in the repository: the deployment injects it from its secret store."""
    canary_customer_id: str = "canary-customer"
    """The customer the canary signs in as: a synthetic identity with no lines of its own."""
    canary_customer_scope: str = "portal"

    @property
    def token_endpoint(self) -> str:
        return self.token_url or self.jwt_issuer.rstrip("/") + "/token"

    @model_validator(mode="after")
    def _deadline_above_threshold(self) -> Self:
        if self.canary_timeout_seconds < self.canary_latency_threshold_seconds:
            raise ValueError(
                "MVNO_CANARY_TIMEOUT_SECONDS must not be below "
                "MVNO_CANARY_LATENCY_THRESHOLD_SECONDS (a slow answer must be seen as slow)"
            )
        return self
