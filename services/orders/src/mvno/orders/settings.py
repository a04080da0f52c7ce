from pydantic import Field

from mvno.common.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    """Settings of the orders service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "orders"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_orders"
    personal_data_kms_key: str = "alias/mvno-orders-personal-data"
    """The KMS key (id, ARN or alias) whose data keys seal RICA details and eSIM codes."""
    network_operator_url: str = "http://127.0.0.1:8010/mno/v1"
    """The host network operator's API (the simulators locally)."""
    payments_url: str = "http://127.0.0.1:8010/payments/v1"
    """The bank's payments API (the simulators locally)."""
    partner_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    catalogue_copy_grace_seconds: float = Field(default=120.0, ge=0, le=3600)
    """How long after start an empty catalogue copy counts as not yet received (the service not
    ready, orders refused as retryable) before it is taken as an empty catalogue."""
    step_attempts: int = Field(default=5, ge=1, le=50)
    """Tries of a provisioning step before the order is compensated and fails."""
    step_retry_base_seconds: float = Field(default=0.5, gt=0)
    step_retry_max_seconds: float = Field(default=30.0, gt=0)
    billing_account_timeout_seconds: float = Field(default=120.0, gt=0)
    """How long an activated line waits for billing-sync's account before the order fails."""
    port_in_timeout_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    """How long a port-in may take at the operator before the order fails (and is undone)."""
    circuit_failure_threshold: int = Field(default=5, ge=1)
    """Consecutive failures of a partner that open its circuit."""
    circuit_open_seconds: float = Field(default=10.0, gt=0)
    """How long an open circuit refuses calls before one is let through to test the partner."""
    timer_poll_seconds: float = Field(default=0.2, gt=0, le=10)
    provisioning_visibility_seconds: int = Field(default=30, ge=2, le=43_200)
    """How long a taken work item stays hidden; a crashed worker's item is retaken after it."""
    relay_enabled: bool = False
    """Whether the API relays the outbox as well. Off: the provisioning workers relay it (each
    runs a relay whatever this says, and at least two run), and the API's event loop only serves:
    each event relayed costs the relaying process CPU for its share of a PublishBatch call, and
    every accepted order makes two. On for an API running alone."""
    outbox_coalesce_seconds: float = Field(default=0.1, ge=0, le=1)
    """Longer than other services' default, so that one PublishBatch carries several events
    (each call costs the relaying process CPU). An order's saga takes two relay hops before it
    completes (its work item, its line's activation for billing-sync), so up to twice this is
    added to its time: keep it well inside the saga's latency target. Orders' outbox does not
    notify at commit (migration 0008): the listening relay looks for due rows every this many
    seconds instead, so an event waits at most this long."""
    intake_paused: bool = False
    """Refuse new orders (503 ``intake-paused``, Retry-After) while the orders already taken
    go on: what the runbooks (docs/runbooks/) have operators set when a partner is down."""
    provisioning_concurrency: int = Field(default=10, ge=1, le=100)
    """Work items one worker runs at once (each holds one order's lock and one connection)."""

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
