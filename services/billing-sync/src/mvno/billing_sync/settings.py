from pydantic import Field

from mvno.common.settings import ServiceSettings


class BillingSyncSettings(ServiceSettings):
    """Settings of the billing-sync service (environment variables prefixed ``MVNO_``)."""

    service_name: str = "billing-sync"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mvno_billing_sync"
    billing_platform_url: str = "http://127.0.0.1:8010/billing/v1"
    """The billing platform's API (the simulators locally)."""
    network_operator_url: str = "http://127.0.0.1:8010/mno/v1"
    """The host network operator's API, polled for usage (the simulators locally)."""
    partner_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    catalogue_copy_grace_seconds: float = Field(default=120.0, ge=0, le=3600)
    """How long after start an empty catalogue copy counts as not yet received (the service not
    ready) before it is taken as an empty catalogue."""

    # --- account sync ---------------------------------------------------------------------------
    sync_attempts: int = Field(default=8, ge=1, le=50)
    """Tries of one billing-account operation before it is reported as failed."""
    sync_retry_base_seconds: float = Field(default=0.5, gt=0)
    sync_retry_max_seconds: float = Field(default=30.0, gt=0)
    sync_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    """How often an idle worker looks for due account operations."""
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_open_seconds: float = Field(default=10.0, gt=0)

    # --- usage ----------------------------------------------------------------------------------
    usage_bucket: str = "mvno-usage-files"
    """The object storage bucket the network operator drops usage files into."""
    usage_files_queue: str = "mvno-billing-sync-usage-files"
    """The queue receiving the bucket's object-created notifications."""
    usage_batch_rows: int = Field(default=20_000, ge=100, le=500_000)
    """Records parsed and copied to the database at a time: bounds the memory a file needs."""
    usage_poll_seconds: float = Field(default=60.0, gt=0)
    """How often the network operator's usage API is polled (0 records: wait this long)."""
    usage_poll_page: int = Field(default=500, ge=1, le=500)
    expiry_sweep_seconds: float = Field(default=30.0, gt=0)
    reconcile_interval_seconds: float = Field(default=3600.0, gt=0)
