"""Settings shared by every service, read from the environment (prefix ``MVNO_``).

Each service subclasses :class:`ServiceSettings` and builds it once in ``create_app()``. The
environment is explicit, and production refuses anything that only makes sense on a laptop.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that are fine on a developer's machine and must never reach production.
DEVELOPMENT_ONLY_SECRETS = frozenset(
    {"", "test", "testing", "dev", "development", "changeme", "secret"}
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class InsecureSettingsError(ValueError):
    """Raised when production settings carry a development-only value."""


class ServiceSettings(BaseSettings):
    """Settings every service has; subclasses add their own and set ``service_name``."""

    model_config = SettingsConfigDict(env_prefix="MVNO_", extra="ignore", frozen=True)

    service_name: str = "mvno"
    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    access_log: bool = False
    """One log line per HTTP request from uvicorn. Off by default: in AWS the load balancer writes
    the access log (ALB access logs to S3), every request is traced and counted by the telemetry,
    and a JSON line per request costs the API a sizeable share of its throughput."""

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_pool_overflow: int = Field(default=5, ge=0, le=200)
    database_create_if_missing: bool = True

    aws_endpoint_url: str | None = None
    aws_region: str = "eu-west-1"
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None

    bus_prefix: str = Field(default="mvno", description="Prefix of the bus's topic and queue names")
    relay_enabled: bool = True
    outbox_coalesce_seconds: float = Field(default=0.005, ge=0, le=1)
    """Woken by a commit, the outbox relay waits this long so that commits arriving together go
    out in one PublishBatch: each event waits up to this much longer, each batch carries more."""
    heartbeat_file: Path | None = None
    """Queue workers touch this file while their event loop turns (their liveness probe reads it);
    unset, nothing is written."""
    heartbeat_interval_seconds: float = Field(default=10.0, gt=0, le=60)
    """How often; the probes allow a minute, so a few missed beats do not restart a worker."""

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_exporter_otlp_endpoint: str = "http://127.0.0.1:4318"
    otel_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    otel_database_spans: bool = False
    """A span per SQL statement in recorded traces. Off, a trace shows each step, partner call
    and event but not the statements between them, which keeps tracing every order within its
    CPU budget. On under ``python3 dev up``, where detail matters more than cost."""

    max_request_bytes: int = Field(default=1_048_576, ge=1024, description="Largest body accepted")

    http_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    http_retry_attempts: int = Field(default=3, ge=1, le=10)

    jwt_issuer: str = "http://127.0.0.1:8009"
    jwt_audience: str = "mvno-platform"
    jwks_url: str = "http://127.0.0.1:8009/.well-known/jwks.json"
    jwks_cache_seconds: int = Field(default=300, ge=10)
    jwt_verified_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    """How long a verified token is remembered (never past its expiry, nor once its key is gone
    from the JWKS); 0 verifies every request's signature."""
    dev_issuer_enabled: bool = True

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @model_validator(mode="after")
    def _refuse_development_values_in_production(self) -> Self:
        if not self.is_production:
            return self
        problems: list[str] = []
        if self.dev_issuer_enabled:
            problems.append("MVNO_DEV_ISSUER_ENABLED must be false in production")
        if self.aws_endpoint_url is not None:
            problems.append("MVNO_AWS_ENDPOINT_URL points at a local AWS stand-in")
        for name in type(self).model_fields:
            value = getattr(self, name)
            if (
                isinstance(value, SecretStr)
                and value.get_secret_value() in DEVELOPMENT_ONLY_SECRETS
            ):
                problems.append(f"{name} holds a development-only value")
        if problems:
            raise InsecureSettingsError("refusing production settings: " + "; ".join(problems))
        return self
