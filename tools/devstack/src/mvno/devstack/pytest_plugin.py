"""pytest fixtures: a real PostgreSQL and a real SNS/SQS endpoint for every test, isolated.

PostgreSQL: TEST_DATABASE_URL when set, else Testcontainers where a Docker engine answers, else the
embedded ``pgserver``. SNS/SQS/S3/KMS: TEST_AWS_ENDPOINT_URL when set, else moto's server started
for the session on a free port and reset before each test that asks for it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from mvno.common.auth.dev_issuer import DevIssuer
from mvno.common.tracing import NoClientRoots, OrderIdSpanProcessor
from mvno.devstack.infrastructure import (
    free_port,
    moto_endpoint,
    postgres_for_tests,
    reset_moto,
    with_database,
)
from mvno.devstack.processes import ProcessGroup
from mvno.devstack.servers import serve_app

pytest_plugins = ["pytest_asyncio"]

# Shared checks in mvno.devstack.testing report their failures as readably as a test's own.
pytest.register_assert_rewrite("mvno.devstack.testing")


_METRICS = InMemoryMetricReader()
_SPANS = InMemorySpanExporter()


def pytest_configure(config: pytest.Config) -> None:
    # One tracer and one meter provider per process, installed before any service code asks for
    # them, recording everything, so tests can read what the plumbing traced and measured.
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[_METRICS]))
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        # Sampled as configure_tracing's provider samples everything: no client call outside a
        # trace is a trace; the order id on every span under an order.
        provider = TracerProvider(
            id_generator=AwsXRayIdGenerator(), sampler=ParentBased(NoClientRoots(ALWAYS_ON))
        )
        provider.add_span_processor(OrderIdSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(_SPANS))
        trace.set_tracer_provider(provider)


@pytest.fixture(scope="session")
def finished_spans() -> InMemorySpanExporter:
    """Every span this test process finished."""
    return _SPANS


@pytest.fixture(scope="session")
def metric_reader() -> InMemoryMetricReader:
    """Everything the process's instruments recorded so far (cumulative)."""
    return _METRICS


@pytest.fixture(scope="session")
def process_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path_factory.mktemp("process-logs"))
    yield group
    group.stop_all()


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``postgresql+asyncpg`` URL to the test server's maintenance database."""
    with postgres_for_tests(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture(scope="session")
def aws_endpoint_url(process_group: ProcessGroup) -> Iterator[str]:
    """An AWS-compatible endpoint on localhost speaking the real SNS/SQS wire protocol."""
    if url := os.environ.get("TEST_AWS_ENDPOINT_URL"):
        yield url
        return
    with moto_endpoint(process_group, free_port()) as url:
        yield url


@pytest.fixture
def clean_aws(aws_endpoint_url: str) -> str:
    """The AWS endpoint with no topics, queues, buckets or keys left from another test."""
    reset_moto(aws_endpoint_url)
    return aws_endpoint_url


async def _admin(server_url: str) -> asyncpg.Connection:
    from mvno.common.db import asyncpg_dsn

    return await asyncpg.connect(asyncpg_dsn(server_url))


@pytest.fixture
async def make_database(postgres_server_url: str) -> AsyncIterator[Callable[[str], str]]:
    """A factory of empty databases, unique to the test and dropped after it.

    Call it with a prefix; it returns a ``postgresql+asyncpg`` URL to the new database's name
    (created by the code under test, or by the caller with ``ensure_database``).
    """
    names: list[str] = []

    def new_database(prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}".replace("-", "_")
        names.append(name)
        return with_database(postgres_server_url, name)

    yield new_database
    admin = await _admin(postgres_server_url)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def copy_database(
    postgres_server_url: str, make_database: Callable[[str], str]
) -> Callable[[str, str], Awaitable[str]]:
    """A factory of databases copied from a template (``CREATE DATABASE … TEMPLATE``), unique to
    the test and dropped after it: ``await copy_database(prefix, template_name)`` gives its URL.
    A migrated, seeded template built once per session makes each test's own database cheap."""

    async def copy(prefix: str, template: str) -> str:
        from sqlalchemy.engine import make_url

        database_url = make_database(prefix)
        admin = await _admin(postgres_server_url)
        try:
            name = make_url(database_url).database
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await admin.close()
        return database_url

    return copy


@contextlib.asynccontextmanager
async def template_database(
    server_url: str, prefix: str, prepare: Callable[[str], Awaitable[None]]
) -> AsyncIterator[str]:
    """A database for a session's tests to copy: created, handed to ``prepare`` (migrate, seed)
    by its URL, its name yielded, dropped at the end."""
    name = f"{prefix}_template_{uuid.uuid4().hex[:8]}"
    await prepare(with_database(server_url, name))
    try:
        yield name
    finally:
        admin = await _admin(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def repository_root(pytestconfig: pytest.Config) -> Path:
    return pytestconfig.rootpath


@dataclass(frozen=True)
class RunningIssuer:
    """The development token issuer served on a real socket, and a way to mint its tokens."""

    url: str
    audience: str
    issuer: DevIssuer

    @property
    def settings(self) -> dict[str, str]:
        """Service settings that trust this issuer."""
        return {"jwt_issuer": self.url, "jwks_url": self.url + "/.well-known/jwks.json"}

    @property
    def environment(self) -> dict[str, str]:
        """The same, as environment variables for a service process."""
        return {f"MVNO_{key.upper()}": value for key, value in self.settings.items()}

    def token(self, subject: str, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> str:
        return self.issuer.issue(subject, audience=self.audience, scopes=scopes, roles=roles)

    def headers(self, subject: str, *, scopes: Iterable[str] = ()) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, scopes=scopes)}"}


@pytest.fixture(scope="session")
async def dev_issuer() -> AsyncIterator[RunningIssuer]:
    """A development token issuer on a free port, for the whole session."""
    from mvno.common.auth.dev_issuer import create_dev_issuer_app
    from mvno.common.settings import ServiceSettings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = ServiceSettings(
        environment="test", jwt_issuer=url, jwks_url=url + "/.well-known/jwks.json"
    )
    app = create_dev_issuer_app(settings)
    async with serve_app(app, port=port):
        yield RunningIssuer(url, settings.jwt_audience, app.state.dev_issuer)
