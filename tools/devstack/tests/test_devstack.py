"""The local platform's wiring: URLs, ports and each process's environment."""

import os
from pathlib import Path

import pytest

from mvno.common.db import asyncpg_dsn
from mvno.devstack import traces
from mvno.devstack.components import BY_NAME
from mvno.devstack.infrastructure import to_asyncpg_url, with_database
from mvno.devstack.platform import Platform, PlatformConfig
from mvno.devstack.processes import ProcessGroup

SOCKET_URL = "postgresql+asyncpg://postgres@/postgres?host=%2Ftmp%2Fpg"


def test_libpq_url_becomes_asyncpg_url():
    assert to_asyncpg_url("postgresql://postgres@127.0.0.1:5432/postgres") == (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )


def test_other_database_on_a_socket_server_keeps_the_socket():
    assert (
        with_database(SOCKET_URL, "mvno_orders")
        == "postgresql+asyncpg://postgres@/mvno_orders?host=%2Ftmp%2Fpg"
    )


@pytest.fixture
def platform(tmp_path: Path, monkeypatch) -> Platform:
    monkeypatch.setenv("MVNO_DATABASE_URL", "postgresql+asyncpg://leaked/from-the-shell")
    config = PlatformConfig(
        data_dir=tmp_path,
        database_server_url=SOCKET_URL,
        aws_endpoint_url="http://127.0.0.1:4566",
        port_offset=100,
        only=["orders"],
    )
    return Platform(config, ProcessGroup(tmp_path / "logs"))


def test_each_service_gets_its_own_database_and_the_shared_endpoints(platform):
    env = platform.environment_for(BY_NAME["orders"])
    assert env["MVNO_DATABASE_URL"] == "postgresql+asyncpg://postgres@/mvno_orders?host=%2Ftmp%2Fpg"
    assert env["MVNO_AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["MVNO_JWKS_URL"] == "http://127.0.0.1:8109/.well-known/jwks.json"
    assert env["MVNO_CATALOG_URL"] == "http://127.0.0.1:8101"


def test_stand_ins_get_no_database(platform):
    assert "MVNO_DATABASE_URL" not in platform.environment_for(BY_NAME["simulators"])


def test_simulators_keep_their_state_in_the_data_folder_and_take_the_shells_settings(
    platform, tmp_path, monkeypatch
):
    monkeypatch.setenv("MVNO_SIM_SEED", "7")
    env = platform.environment_for(BY_NAME["simulators"])
    assert env["MVNO_SIM_STATE_FILE"] == str(tmp_path / "simulators-state.pickle")
    assert env["MVNO_SIM_SEED"] == "7"
    assert env["MVNO_SIM_ENVIRONMENT"] == "development"


def test_the_callers_mvno_settings_reach_every_process_under_the_platforms_own(
    platform, monkeypatch
):
    monkeypatch.setenv("MVNO_OTEL_SAMPLE_RATIO", "0.5")
    monkeypatch.setenv("MVNO_STEP_ATTEMPTS", "7")
    monkeypatch.setenv("MVNO_JWKS_URL", "http://elsewhere/jwks.json")
    monkeypatch.setenv("MVNO_CATALOG_URL", "http://elsewhere")
    for name in ("orders", "simulators", "dev-issuer"):
        env = platform.environment_for(BY_NAME[name])
        assert env["MVNO_OTEL_SAMPLE_RATIO"] == "0.5"
        assert env["MVNO_STEP_ATTEMPTS"] == "7"
        # Where the platform's processes are is the platform's to say.
        assert env["MVNO_JWKS_URL"] == "http://127.0.0.1:8109/.well-known/jwks.json"
        assert env["MVNO_CATALOG_URL"] == "http://127.0.0.1:8101"
        assert "MVNO_DATABASE_URL" not in env or "leaked" not in env["MVNO_DATABASE_URL"]
    assert platform.environment_for(BY_NAME["simulators"])["MVNO_SIM_OTEL_SAMPLE_RATIO"] == "0.5"


def test_spans_go_to_the_local_receiver_unless_the_caller_says_otherwise(platform, monkeypatch):
    monkeypatch.delenv("MVNO_OTEL_EXPORTER", raising=False)
    monkeypatch.delenv("MVNO_OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    orders = platform.environment_for(BY_NAME["orders"])
    assert orders["MVNO_OTEL_EXPORTER"] == "otlp"
    assert orders["MVNO_OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4418"
    simulators = platform.environment_for(BY_NAME["simulators"])
    assert simulators["MVNO_SIM_OTEL_EXPORTER"] == "otlp"
    assert simulators["MVNO_SIM_OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4418"
    assert traces.receiver_wanted(os.environ, 100)

    monkeypatch.setenv("MVNO_OTEL_EXPORTER", "none")
    assert platform.environment_for(BY_NAME["orders"])["MVNO_OTEL_EXPORTER"] == "none"
    assert platform.environment_for(BY_NAME["simulators"])["MVNO_SIM_OTEL_EXPORTER"] == "none"
    assert not traces.receiver_wanted(os.environ, 100)

    monkeypatch.setenv("MVNO_OTEL_EXPORTER", "otlp")
    monkeypatch.setenv("MVNO_OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    env = platform.environment_for(BY_NAME["orders"])
    assert env["MVNO_OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    assert not traces.receiver_wanted(os.environ, 100)


def test_subset_runs_the_stand_ins_and_the_chosen_services(platform):
    assert [c.name for c in platform.components()] == ["dev-issuer", "simulators", "orders"]


def test_unknown_service_is_refused(tmp_path):
    config = PlatformConfig(tmp_path, SOCKET_URL, "http://x", only=["billing"])
    with pytest.raises(ValueError, match="billing"):
        config.services()


def test_the_embedded_server_takes_a_whole_platforms_connections(tmp_path):
    import asyncio

    import asyncpg

    from mvno.devstack.infrastructure import EMBEDDED_MAX_CONNECTIONS, embedded_postgres

    async def max_connections(url: str) -> int:
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return int(await connection.fetchval("SHOW max_connections"))
        finally:
            await connection.close()

    with embedded_postgres(tmp_path / "pg") as url:
        assert asyncio.run(max_connections(url)) == EMBEDDED_MAX_CONNECTIONS
    with embedded_postgres(tmp_path / "pg") as url:  # kept by the data folder
        assert asyncio.run(max_connections(url)) == EMBEDDED_MAX_CONNECTIONS


def test_the_canary_probes_the_local_partners_and_portal_faster_with_the_shells_settings(
    platform, monkeypatch
):
    from mvno.devstack.canary import canary_environment

    monkeypatch.setenv("MVNO_CANARY_LATENCY_THRESHOLD_SECONDS", "0.5")
    env = canary_environment(platform)
    assert env["MVNO_NETWORK_OPERATOR_URL"] == "http://127.0.0.1:8110/mno/v1"
    assert env["MVNO_PAYMENTS_URL"] == "http://127.0.0.1:8110/payments/v1"
    assert env["MVNO_BILLING_PLATFORM_URL"] == "http://127.0.0.1:8110/billing/v1"
    assert env["MVNO_PORTAL_API_URL"] == "http://127.0.0.1:8100"
    assert env["MVNO_JWT_ISSUER"] == "http://127.0.0.1:8109"
    assert env["MVNO_AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert float(env["MVNO_CANARY_INTERVAL_SECONDS"]) < 60
    assert env["MVNO_CANARY_LATENCY_THRESHOLD_SECONDS"] == "0.5"
    assert "MVNO_DATABASE_URL" not in env


def test_the_canary_runs_only_beside_the_whole_platform(platform):
    from mvno.devstack.canary import start_canary

    start_canary(platform)  # `only=["orders"]`: the missing services would all read as down
    assert "canary" not in platform.started
