from pydantic import Field

from mvno.common.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    """Settings of the orders service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "orders"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_orders"

    # --- channel callbacks (hub webhooks) -----------------------------------------------------
    hub_delivery_attempts: int = Field(default=15, ge=1, le=50)
    """Attempts per webhook before it is marked failed (the first one included)."""
    hub_retry_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    """Wait after the first failed attempt; it doubles after each later one, with jitter."""
    hub_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    """Longest wait between two attempts.

    With the defaults, 15 attempts span about 3 to 5 hours: a channel down for a deploy or a night's
    maintenance still gets its callbacks, and one that is gone for good stops costing us work.
    """
    hub_delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """Whole-call deadline of one attempt: connecting, sending and reading the status."""
    hub_poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often an idle delivery worker looks for due webhooks."""
    hub_delivery_concurrency: int = Field(default=20, ge=1, le=500)
    """Webhooks one worker sends at once, so one slow callback does not hold up the others."""
