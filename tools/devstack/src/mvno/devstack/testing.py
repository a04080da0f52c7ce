"""Helpers for service tests that run a service as a real process, as production does."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from mvno.common.db import asyncpg_dsn
from mvno.common.events.base import Money
from mvno.common.events.catalog import OfferingPrice
from mvno.devstack.components import BY_NAME
from mvno.devstack.infrastructure import free_port
from mvno.devstack.processes import ProcessGroup, wait_until_ready


def service_environment(database_url: str, aws_endpoint_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MVNO_")}
    env.update(
        {
            "MVNO_ENVIRONMENT": "test",
            "MVNO_DATABASE_URL": database_url,
            "MVNO_AWS_ENDPOINT_URL": aws_endpoint_url,
        }
    )
    return env


@contextlib.contextmanager
def running_service(
    name: str,
    processes: ProcessGroup,
    *,
    database_url: str,
    aws_endpoint_url: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[httpx.Client]:
    """Migrate and serve one service as its own process; yield a client bound to it."""
    component = BY_NAME[name]
    env = {**service_environment(database_url, aws_endpoint_url), **(extra_env or {})}
    migrate = subprocess.run(
        [sys.executable, "-m", component.module, "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if migrate.returncode != 0:
        raise RuntimeError(
            f"{name} migrate failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}"
        )
    port = free_port()
    child = processes.start(
        f"{name}-{port}",
        [sys.executable, "-m", component.module, "serve", "--port", str(port)],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(child, f"{base}/health/ready", timeout=90)
        with httpx.Client(base_url=base, timeout=10) as client:
            yield client
    finally:
        processes.stop(child)


async def check_service_boots(
    name: str,
    processes: ProcessGroup,
    *,
    database_url: str,
    aws_endpoint_url: str,
    migrations: Path,
) -> None:
    """Assert what every service promises: it migrates its own database, boots as a process,
    answers its health probes, serves its OpenAPI document and answers unknown routes with a problem.
    """
    # A fresh database's catalogue copy is empty: taken at once as an empty catalogue here.
    with running_service(
        name,
        processes,
        database_url=database_url,
        aws_endpoint_url=aws_endpoint_url,
        extra_env={"MVNO_CATALOGUE_COPY_GRACE_SECONDS": "0"},
    ) as api:
        assert api.get("/health/live").json() == {"status": "live"}
        checks = api.get("/health/ready").json()["checks"]
        assert checks["database"] == checks["bus"] == "ok"
        assert set(checks.values()) == {"ok"}
        openapi = api.get("/openapi.json").json()
        missing = api.get("/no/such/route")
    assert openapi["info"]["version"]
    assert "/health/ready" in openapi["paths"]
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    newest = sorted(path.name for path in (migrations / "versions").glob("*.py"))[-1].split("_")[0]
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == newest
    finally:
        await connection.close()


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and stable type; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:mvno:problem:{slug}", body
    return body


def fuzz_openapi(
    base_url: str, headers: dict[str, str], *, negative: bool, examples: int = 30
) -> list[str]:
    """Run schemathesis over every operation of the served OpenAPI document; return failures.

    Blocking (call it with ``asyncio.to_thread`` when the server runs in the test's loop).
    Positive cases are valid by the schema, negative ones invalid on purpose; with either, no
    answer may be a server error and every answer must match the document.
    """
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    mode = GenerationMode.NEGATIVE if negative else GenerationMode.POSITIVE
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        if not hasattr(result, "ok"):
            failures.append(f"the document has an operation schemathesis cannot read: {result}")
            continue
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=30)

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid: the operation takes no parameters and no body.
            if not negative:
                failures.append(f"{operation.label}: no valid case could be generated")
        except Exception as error:  # every failing operation is reported, not just the first
            failures.append(f"{operation.label}: {error}")
    return failures


def offering_price(
    price_id: str,
    amount: str,
    price_type: str = "oneTime",
    *,
    valid_from: datetime,
    **extra: Any,
) -> OfferingPrice:
    """A price as catalog's events carry it: ``amount`` in rand VAT included (15 %), the
    duty-free amount derived from it."""
    included = Decimal(amount)
    return OfferingPrice(
        price_id=price_id,
        price_type=price_type,
        duty_free_amount=Money(amount=(included / Decimal("1.15")).quantize(Decimal("0.01"))),
        tax_included_amount=Money(amount=included),
        tax_rate=Decimal("15"),
        valid_from=valid_from,
        **extra,
    )


def metric_points(reader: Any, name: str, **attributes: Any) -> list[Any]:
    """The data points an in-memory metric reader holds for instrument ``name``, those with
    ``attributes`` (dotted names passed as ``**{"http.route": ...}``) when given."""
    data = reader.get_metrics_data()
    return [
        point
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
        if all(point.attributes.get(key) == value for key, value in attributes.items())
    ]


def wait_for_banner(process: subprocess.Popen[str], timeout: float = 180) -> None:
    """Read ``mvno-local up``'s output until it says the platform is up; fail with what it printed
    if it exits or takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError("the platform exited early:\n" + "".join(seen))
        seen.append(line)
        if "Press Ctrl-C to stop" in line:
            return
    raise AssertionError("the platform did not come up in time:\n" + "".join(seen))
