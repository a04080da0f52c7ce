from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mvno.common.settings import ServiceSettings


class SimulatorSettings(ServiceSettings):
    """Settings of the third-party simulators (environment variables prefixed ``MVNO_SIM_``)."""

    model_config = SettingsConfigDict(env_prefix="MVNO_SIM_", extra="ignore", frozen=True)

    service_name: str = "simulators"
    seed: int = Field(default=42, description="Makes simulated outcomes repeatable")
