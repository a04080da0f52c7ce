from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mvno.common.settings import ServiceSettings
from mvno.simulators.faults import FaultRule


class SimulatorSettings(ServiceSettings):
    """Settings of the third-party simulators (environment variables prefixed ``MVNO_SIM_``).

    Lists and the fault table are JSON, e.g.
    ``MVNO_SIM_FAULTS='{"payments": {"errorRate": 0.1}, "mno.activate_subscription": {"latencyMs": 800}}'``.
    """

    model_config = SettingsConfigDict(env_prefix="MVNO_SIM_", extra="ignore", frozen=True)

    service_name: str = "simulators"
    seed: int = Field(default=42, description="Makes simulated outcomes repeatable")
    state_file: Path | None = Field(
        default=None,
        description="Where the state is saved at shutdown and read at start; memory only if unset",
    )

    faults: dict[str, FaultRule] = Field(
        default_factory=dict,
        description='Faults from the start, keyed by "partner" or "partner.operation"',
    )
    fault_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How long an injected timeout holds a call"
    )
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)

    number_pool_size: int = Field(default=5000, ge=10, le=500_000)
    physical_sim_stock: int = Field(default=2000, ge=10, le=500_000)
    reservation_hold_seconds: int = Field(
        default=900, ge=1, le=30 * 86_400, description="How long a number reservation lasts"
    )
    smdp_host: str = Field(default="smdp.simulator.test", description="SM-DP+ in activation codes")
    activation_delay_seconds: float = Field(
        default=0.0, ge=0, le=3600, description="0 activates at once; else 202 and a callback"
    )
    activation_failure_rate: float = Field(default=0.0, ge=0, le=1)
    port_in_delay_seconds: float = Field(
        default=0.0, ge=0, le=86_400, description="How long a port-in takes; 0 ports at once"
    )
    callback_attempts: int = Field(default=3, ge=1, le=10)
    callback_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    usage_interval_seconds: int = Field(
        default=3600, ge=0, description="Simulated time per batch of usage records; 0 turns it off"
    )

    opening_balance_cents: int = Field(
        default=100_000_000, ge=0, description="A new bank account's balance (R1,000,000.00)"
    )
    insufficient_funds_accounts: list[str] = Field(
        default=["4000000002"], description="Bank accounts that start with no funds"
    )
    blocked_accounts: list[str] = Field(
        default=["4000000003"], description="Bank accounts that decline everything as blocked"
    )
